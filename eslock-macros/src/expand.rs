//! Generates the code for `#[exclusive]`: the function keeps its signature,
//! attributes and docs, and its body runs inside `LockManager::with_lock`.

use eslock_rules::Segment;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, ReturnType, Type};

use crate::attr::{ExclusiveArgs, LockSpec, MetadataEntry};

pub fn exclusive(args: ExclusiveArgs, function: ItemFn) -> syn::Result<TokenStream> {
    let signature = &function.sig;
    if signature.asyncness.is_none() {
        return Err(syn::Error::new(
            signature.fn_token.span(),
            "#[exclusive] works on `async fn` only: the lock is held across awaits; write `async fn`",
        ));
    }
    let return_type = result_type(&signature.output)?;
    let parameters = parameter_names(&function);
    if let Some(startup) = args.startup {
        if !signature.inputs.is_empty() {
            let mut error = syn::Error::new(
                signature.inputs.span(),
                "start-up tasks take no arguments: the start-up runner has nothing to pass; read what the task needs from statics or its environment",
            );
            error.combine(syn::Error::new(startup, "marked as a start-up task here"));
            return Err(error);
        }
    }

    // Conversions of eslock's errors into the function's error type are
    // spanned on the return type, where a missing `From` impl is reported.
    let from = quote_spanned! {return_type.span()=> ::core::convert::From::from };
    let lock_id = lock_id_expr(&args.lock, &parameters, &from)?;
    let options = options_expr(&args);
    let manager = match &args.manager {
        Some(expr) => quote_spanned! {expr.span()=> ::eslock::__private::manager_of(&(#expr)) },
        None => quote! {
            match ::eslock::installed() {
                ::core::result::Result::Ok(manager) => ::core::clone::Clone::clone(manager),
                #[allow(clippy::useless_conversion)]
                ::core::result::Result::Err(error) => return ::core::result::Result::Err(#from(error)),
            }
        },
    };

    let attrs = &function.attrs;
    let vis = &function.vis;
    let block = &function.block;

    // The body, run under the lock. The never-taken `return` pins the async
    // block's output type so that `?` inside the body infers as written.
    let locked = |body: TokenStream| {
        quote! {
            let __eslock_manager: ::eslock::LockManager = #manager;
            let __eslock_lock_id = #lock_id;
            let __eslock_options = #options;
            match __eslock_manager
                .with_lock(__eslock_lock_id, __eslock_options, move || async move {
                    #[allow(unreachable_code, clippy::diverging_sub_expression)]
                    if false {
                        let __eslock_type_hint: #return_type = ::core::unreachable!();
                        return __eslock_type_hint;
                    }
                    #body
                })
                .await
            {
                ::core::result::Result::Ok(output) => output,
                #[allow(clippy::useless_conversion)]
                ::core::result::Result::Err(error) => ::core::result::Result::Err(#from(error)),
            }
        }
    };

    if args.startup.is_none() {
        let body = locked(quote! { #block });
        return Ok(quote! {
            #(#attrs)*
            #vis #signature {
                #body
            }
        });
    }

    // A start-up task: the body lives in a hidden function that the runner
    // calls under the lock; the function itself stays callable and locks.
    let name = &signature.ident;
    let inner = format_ident!("__eslock_startup_{}", name);
    let body = locked(quote! { #inner().await });
    let literal_id = template_expr(&args.lock);
    let once = args.once.is_some();
    let ttl = optional_duration(args.ttl);
    let wait = optional_duration(args.wait);
    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        async fn #inner() -> #return_type #block

        #(#attrs)*
        #vis #signature {
            #body
        }

        ::eslock::__private::inventory::submit! {
            ::eslock::StartupTask::__new(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                #literal_id,
                #once,
                #ttl,
                #wait,
                || ::std::boxed::Box::pin(async {
                    #inner().await.map(|_| ()).map_err(|error| ::std::string::ToString::to_string(&error))
                }),
            )
        }
    })
}

/// `-> Result<T, E>` (any path ending in `Result`); anything else is an error.
fn result_type(output: &ReturnType) -> syn::Result<&Type> {
    let message = "#[exclusive] functions must return Result<T, E> with E: From<eslock::Error>, \
                   so that a held lock can be returned as an error";
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(path) if path.path.segments.last().is_some_and(|s| s.ident == "Result") => Ok(ty),
            other => Err(syn::Error::new(other.span(), message)),
        },
        ReturnType::Default => Err(syn::Error::new(output.span(), message)),
    }
}

/// Names of the parameters that are plain identifiers (`self` excluded).
fn parameter_names(function: &ItemFn) -> Vec<syn::Ident> {
    function
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) => Some(ident.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}

fn lock_id_expr(lock: &LockSpec, parameters: &[syn::Ident], from: &TokenStream) -> syn::Result<TokenStream> {
    match lock {
        LockSpec::Literal { literal, segments } => {
            if !segments.iter().any(|s| matches!(s, Segment::Placeholder(_))) {
                return Ok(quote! { #literal });
            }
            let mut format = String::new();
            let mut values = Vec::new();
            for segment in segments {
                match segment {
                    Segment::Literal(text) => format.push_str(&text.replace('{', "{{").replace('}', "}}")),
                    Segment::Placeholder(name) => {
                        let Some(parameter) = parameters.iter().find(|p| *p == name) else {
                            let known = parameters.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
                            return Err(syn::Error::new(
                                literal.span(),
                                format!(
                                    "placeholder {{{name}}} names no parameter of this function; {}",
                                    if known.is_empty() { "it has none".to_string() } else { format!("its parameters are: {known}") }
                                ),
                            ));
                        };
                        format.push_str("{}");
                        values.push(parameter.clone());
                    }
                }
            }
            Ok(quote! { ::std::format!(#format, #(#values),*) })
        }
        LockSpec::Named(path) => {
            let names: Vec<String> = parameters.iter().map(|p| p.to_string()).collect();
            let arms = parameters.iter().map(|parameter| {
                let name = parameter.to_string();
                quote! { #name => (&&::eslock::__private::Displayed(&#parameter)).eslock_display(), }
            });
            Ok(quote_spanned! {path.span()=>
                {
                    const _: () = ::core::assert!(
                        ::eslock::__private::placeholders_are_known(#path.template(), &[#(#names),*]),
                        "a {{placeholder}} of this lock name names no parameter of the function"
                    );
                    #[allow(unused_imports)]
                    use ::eslock::__private::{ViaDisplay as _, ViaFallback as _};
                    match #path.fill(|placeholder: &str| match placeholder { #(#arms)* _ => ::core::option::Option::None }) {
                        ::core::result::Result::Ok(id) => id,
                        #[allow(clippy::useless_conversion)]
                ::core::result::Result::Err(error) => return ::core::result::Result::Err(#from(error)),
                    }
                }
            })
        }
    }
}

/// The lock id as written: a literal template, or a `lock_names!` name's.
fn template_expr(lock: &LockSpec) -> TokenStream {
    match lock {
        LockSpec::Literal { literal, .. } => quote! { #literal },
        LockSpec::Named(path) => quote! { #path.template() },
    }
}

fn optional_duration(duration: Option<std::time::Duration>) -> TokenStream {
    match duration {
        Some(duration) => {
            let millis = duration.as_millis() as u64;
            quote! { ::core::option::Option::Some(::core::time::Duration::from_millis(#millis)) }
        }
        None => quote! { ::core::option::Option::None },
    }
}

fn options_expr(args: &ExclusiveArgs) -> TokenStream {
    // The template, not the rendered id, labels metrics: bounded cardinality.
    let label = template_expr(&args.lock);
    let mut options = quote! { ::eslock::LockOptions::default().label(#label) };
    if let Some(ttl) = args.ttl {
        let millis = ttl.as_millis() as u64;
        options = quote! { #options.ttl(::core::time::Duration::from_millis(#millis)) };
    }
    if let Some(wait) = args.wait {
        let millis = wait.as_millis() as u64;
        options = quote! { #options.wait(::core::time::Duration::from_millis(#millis)) };
    }
    if !args.metadata.is_empty() {
        let inserts = args.metadata.iter().map(|MetadataEntry { key, value, negative }| {
            let value = if *negative { quote! { -#value } } else { quote! { #value } };
            quote! { map.insert(::std::string::String::from(#key), ::eslock::__private::serde_json::Value::from(#value)); }
        });
        options = quote! {
            #options.metadata({
                let mut map = ::eslock::__private::serde_json::Map::new();
                #(#inserts)*
                ::eslock::__private::serde_json::Value::Object(map)
            })
        };
    }
    options
}
