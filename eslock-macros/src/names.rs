//! Reads the syntax of `lock_names!` into [`LockNames`]; `valid.rs` checks
//! the ids.

use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Ident, LitStr, Token, Visibility};

/// One `pub NAME = "id";` line.
pub(crate) struct LockNameDecl {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub name: Ident,
    pub id: LitStr,
}

/// The whole declaration.
pub(crate) struct LockNames(pub Vec<LockNameDecl>);

impl Parse for LockNames {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut decls = Vec::new();
        while !input.is_empty() {
            let attrs = input.call(Attribute::parse_outer)?;
            let vis: Visibility = input.parse()?;
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            let id: LitStr = input
                .parse()
                .map_err(|err| syn::Error::new(err.span(), "a lock name is a string: NAME = \"lock-id\";"))?;
            input.parse::<Token![;]>()?;
            decls.push(LockNameDecl { attrs, vis, name, id });
        }
        Ok(LockNames(decls))
    }
}
