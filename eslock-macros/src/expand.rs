//! Generates code from what `valid.rs` accepted. `#[exclusive]`: the function
//! keeps its signature, attributes and docs, and its body runs inside
//! `LockManager::with_lock`. `lock_names!`: one constant per name. Generated
//! code names hidden helpers only through `::eslock::__private`.

use eslock_rules::Segment;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::valid::{self, Exclusive, Lock, Metadata, ValidName};

pub(crate) fn exclusive(exclusive: Exclusive) -> TokenStream {
    let Exclusive { function, return_type, .. } = &exclusive;

    // `E::from(error)` for the function's error type `E`, spanned on the
    // return type, where a missing `From` impl is reported.
    let lock_error = quote_spanned! {return_type.span()=> ::eslock::__private::lock_error(error) };
    let lock_id = lock_id_expr(&exclusive, &lock_error);
    let options = options_expr(&exclusive);
    let manager = match &exclusive.manager {
        Some(expr) => quote_spanned! {expr.span()=> ::eslock::__private::manager_of(&(#expr)) },
        None => quote! {
            match ::eslock::installed() {
                ::core::result::Result::Ok(manager) => ::core::clone::Clone::clone(manager),
                ::core::result::Result::Err(error) => return ::core::result::Result::Err(#lock_error),
            }
        },
    };

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
                ::core::result::Result::Err(error) => ::core::result::Result::Err(#lock_error),
            }
        }
    };

    let attrs = &function.attrs;
    let vis = &function.vis;
    let signature = &function.sig;
    let block = &function.block;
    let Some(startup) = &exclusive.startup else {
        let body = locked(quote! { #block });
        return quote! {
            #(#attrs)*
            #vis #signature {
                #body
            }
        };
    };

    // A start-up task: the body becomes a function that the runner calls
    // under its own lock; the function itself stays callable and locks.
    // Both that function and the registration are items inside the body, so
    // that an associated function in an `impl` block works like a free one.
    let name = &signature.ident;
    let once = startup.once;
    let lock_id = match &exclusive.lock {
        Lock::Literal { literal, .. } => quote! { #literal },
        // Only a complete `LockName` fits, and it may be too long for a
        // `once` marker: a panic in a constant is the compile error.
        Lock::Named(path) => quote_spanned! {path.span()=>
            match ::eslock::__private::startup_lock_id(&#path, #once) {
                ::core::result::Result::Ok(id) => id,
                ::core::result::Result::Err(problem) => ::core::panic!("{}", problem),
            }
        },
    };
    let ttl = optional_duration(exclusive.ttl);
    let wait = optional_duration(exclusive.wait);
    let body = locked(quote! { __eslock_task().await });
    quote! {
        #(#attrs)*
        #vis #signature {
            async fn __eslock_task() -> #return_type #block

            const ESLOCK_STARTUP_LOCK_ID: &str = #lock_id;
            ::eslock::__private::inventory::submit! {
                ::eslock::__private::startup_task(
                    ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                    ESLOCK_STARTUP_LOCK_ID,
                    #once,
                    #ttl,
                    #wait,
                    || ::std::boxed::Box::pin(async {
                        __eslock_task().await.map(|_| ()).map_err(|error| ::std::string::ToString::to_string(&error))
                    }),
                )
            }

            #body
        }
    }
}

fn lock_id_expr(exclusive: &Exclusive, lock_error: &TokenStream) -> TokenStream {
    let parameters = &exclusive.parameters;
    match &exclusive.lock {
        Lock::Literal { literal, segments } => {
            if !segments.iter().any(|s| matches!(s, Segment::Placeholder(_))) {
                return quote! { #literal };
            }
            let mut format = String::new();
            let mut values = Vec::new();
            for segment in segments {
                match segment {
                    Segment::Literal(text) => format.push_str(&text.replace('{', "{{").replace('}', "}}")),
                    Segment::Placeholder(name) => {
                        format.push_str("{}");
                        values.push(parameters.iter().find(|p| *p == name).expect("validated: placeholders are parameters"));
                    }
                }
            }
            quote! { ::std::format!(#format, #(#values),*) }
        }
        Lock::Named(path) => {
            let names: Vec<String> = parameters.iter().map(|p| p.to_string()).collect();
            let parameter_list = valid::parameter_list(parameters);
            let arms = parameters.iter().map(|parameter| {
                let name = parameter.to_string();
                quote! { #name => (&&::eslock::__private::Displayed(&#parameter)).eslock_display(), }
            });
            // The placeholders of a declared name are known only to the
            // compiler: it checks them here, and the panic is the error.
            let check = if exclusive.startup.is_none() {
                quote_spanned! {path.span()=>
                    const ESLOCK_PLACEHOLDERS_ARE_PARAMETERS: () = if let ::core::option::Option::Some(message) =
                        ::eslock::__private::check_placeholders(
                            #path.name(), #path.template(), #path.placeholders(), &[#(#names),*], #parameter_list,
                        )
                    {
                        ::core::panic!("{}", message.as_str());
                    };
                    #[allow(clippy::let_unit_value)]
                    let () = ESLOCK_PLACEHOLDERS_ARE_PARAMETERS;
                }
            } else {
                // A start-up task's name is checked by `startup_lock_id`.
                quote! {}
            };
            quote_spanned! {path.span()=>
                {
                    #check
                    #[allow(unused_imports)]
                    use ::eslock::__private::{ViaDisplay as _, ViaFallback as _};
                    let __eslock_value = |placeholder: &str| match placeholder { #(#arms)* _ => ::core::option::Option::None };
                    match ::eslock::__private::Declared::lock_id(&#path, &__eslock_value) {
                        ::core::result::Result::Ok(id) => id,
                        ::core::result::Result::Err(error) => return ::core::result::Result::Err(#lock_error),
                    }
                }
            }
        }
    }
}

/// The lock id as written: a literal template, or a `lock_names!` name's.
fn template_expr(lock: &Lock) -> TokenStream {
    match lock {
        Lock::Literal { literal, .. } => quote! { #literal },
        Lock::Named(path) => quote! { #path.template() },
    }
}

fn duration_expr(duration: std::time::Duration) -> TokenStream {
    let millis = duration.as_millis() as u64;
    quote! { ::core::time::Duration::from_millis(#millis) }
}

fn optional_duration(duration: Option<std::time::Duration>) -> TokenStream {
    match duration.map(duration_expr) {
        Some(duration) => quote! { ::core::option::Option::Some(#duration) },
        None => quote! { ::core::option::Option::None },
    }
}

fn options_expr(exclusive: &Exclusive) -> TokenStream {
    // The template, not the rendered id, labels metrics: bounded cardinality.
    let label = template_expr(&exclusive.lock);
    let mut options = quote! { ::eslock::LockOptions::default().label(#label) };
    if let Some(ttl) = exclusive.ttl.map(duration_expr) {
        options = quote! { #options.ttl(#ttl) };
    }
    if let Some(wait) = exclusive.wait.map(duration_expr) {
        options = quote! { #options.wait(#wait) };
    }
    if !exclusive.metadata.is_empty() {
        let inserts = exclusive.metadata.iter().map(|Metadata { key, value, negative }| {
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

/// One constant per name: a `LockName` for a complete id, a `LockTemplate`
/// (which is not a lock id) for one with placeholders.
pub(crate) fn lock_names(names: Vec<ValidName>) -> TokenStream {
    let consts = names.iter().map(|ValidName { decl, placeholders, once_problem }| {
        let (attrs, vis, name, id) = (&decl.attrs, &decl.vis, &decl.name, &decl.id);
        let doc = format!("Lock `{}`.", id.value());
        let name_text = name.to_string();
        let (ty, value) = if placeholders.is_empty() {
            let once_problem = match once_problem {
                Some(problem) => quote! { ::core::option::Option::Some(#problem) },
                None => quote! { ::core::option::Option::None },
            };
            (quote! { ::eslock::LockName }, quote! { ::eslock::__private::lock_name(#name_text, #id, #once_problem) })
        } else {
            (
                quote! { ::eslock::LockTemplate },
                quote! { ::eslock::__private::lock_template(#name_text, #id, &[#(#placeholders),*]) },
            )
        };
        quote! {
            #[doc = #doc]
            #(#attrs)*
            #vis const #name: #ty = #value;
        }
    });
    quote! { #(#consts)* }
}
