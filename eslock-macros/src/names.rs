//! `lock_names!`: typed lock names checked at compile time.

use std::collections::HashMap;

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Ident, LitStr, Token, Visibility};

/// One `pub NAME = "id";` line.
pub struct LockNameDecl {
    attrs: Vec<Attribute>,
    vis: Visibility,
    name: Ident,
    id: LitStr,
}

/// The whole declaration.
pub struct LockNames(Vec<LockNameDecl>);

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

pub fn expand(names: LockNames) -> syn::Result<TokenStream> {
    let mut errors: Option<syn::Error> = None;
    let mut push = |error: syn::Error| match errors.as_mut() {
        Some(errors) => errors.combine(error),
        None => errors = Some(error),
    };
    let mut ids: HashMap<String, &Ident> = HashMap::new();
    let mut names_seen: HashMap<String, &Ident> = HashMap::new();
    for decl in &names.0 {
        if let Err(err) = eslock_rules::parse_template(&decl.id.value()) {
            push(syn::Error::new(decl.id.span(), format!("invalid lock id: {err}")));
        }
        if let Some(first) = ids.insert(decl.id.value(), &decl.name) {
            push(syn::Error::new(
                decl.id.span(),
                format!("lock id \"{}\" is already declared as `{first}`; each name needs its own id", decl.id.value()),
            ));
        }
        if let Some(first) = names_seen.insert(decl.name.to_string(), &decl.name) {
            push(syn::Error::new(decl.name.span(), format!("`{first}` is declared twice; rename one of them")));
        }
    }
    if let Some(errors) = errors {
        return Err(errors);
    }
    let consts = names.0.iter().map(|LockNameDecl { attrs, vis, name, id }| {
        let doc = format!("Lock `{}`.", id.value());
        let name_text = name.to_string();
        quote! {
            #[doc = #doc]
            #(#attrs)*
            #vis const #name: ::eslock::LockName = ::eslock::LockName::__new(#name_text, #id);
        }
    });
    Ok(quote! { #(#consts)* })
}
