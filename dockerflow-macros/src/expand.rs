//! Code generation: the user's item unchanged, then one registration in a `const _` block.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::ItemFn;

use crate::args;

/// Which hook list a function joins.
pub(crate) enum Hook {
    Passed,
    Failed,
}

impl Hook {
    fn macro_name(&self) -> &'static str {
        match self {
            Hook::Passed => "dockerflow::on_heartbeat_passed",
            Hook::Failed => "dockerflow::on_heartbeat_failed",
        }
    }

    fn kind(&self) -> TokenStream {
        match self {
            Hook::Passed => quote!(::dockerflow::__private::HookKind::Passed),
            Hook::Failed => quote!(::dockerflow::__private::HookKind::Failed),
        }
    }
}

pub(crate) fn check(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let err = not_a_fn(&item, "dockerflow::check");
            return input_and_compile_error(item, err);
        }
    };
    match expand_check(attr, &func) {
        Ok(registration) => quote!(#func #registration),
        Err(err) => input_and_compile_error(quote!(#func), err),
    }
}

pub(crate) fn hook(which: Hook, attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let err = not_a_fn(&item, which.macro_name());
            return input_and_compile_error(item, err);
        }
    };
    match expand_hook(&which, attr, &func) {
        Ok(registration) => quote!(#func #registration),
        Err(err) => input_and_compile_error(quote!(#func), err),
    }
}

fn expand_check(attr: TokenStream, func: &ItemFn) -> syn::Result<TokenStream> {
    let args = args::parse_check_args(attr)?;
    let params = args::plain_params(func, "a check")?;
    let output = args::check_return(func)?;

    let ident = &func.sig.ident;
    let name = args.name.clone().unwrap_or_else(|| ident.to_string());
    let id = args.id.clone().unwrap_or_else(|| name.clone());
    let level = level_tokens(&args.level);
    let timeout_ms = match args.timeout_ms {
        Some(ms) => quote!(::core::option::Option::Some(#ms)),
        None => quote!(::core::option::Option::None),
    };

    let arg_names: Vec<Ident> = (0..params.len())
        .map(|i| format_ident!("__dockerflow_arg{i}"))
        .collect();
    let extract = params.iter().zip(&arg_names).map(|(ty, arg)| {
        quote_spanned! {ty.span()=>
            let #arg: #ty = match ::dockerflow::__private::FromCheckContext::from_context(__dockerflow_ctx) {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(missing) => return ::dockerflow::__private::Prepared::failed(missing),
            };
        }
    });
    let assert_output = quote_spanned! {output.span()=>
        ::dockerflow::__private::assert_check_outcome::<#output>();
    };
    let run = if func.sig.asyncness.is_some() {
        quote!(::dockerflow::__private::Prepared::future(async move { #ident(#(#arg_names),*).await }))
    } else {
        quote!(::dockerflow::__private::Prepared::blocking(move || #ident(#(#arg_names),*)))
    };
    let location = location(args::name_span(func));

    Ok(quote! {
        #[doc(hidden)]
        const _: () = {
            fn __dockerflow_prepare(
                __dockerflow_ctx: &::dockerflow::__private::CheckContext<'_>,
            ) -> ::dockerflow::__private::Prepared {
                #assert_output
                #(#extract)*
                #run
            }
            ::dockerflow::__private::inventory::submit! {
                ::dockerflow::__private::CheckRecord {
                    name: #name,
                    id: #id,
                    level: #level,
                    timeout_ms: #timeout_ms,
                    location: #location,
                    prepare: __dockerflow_prepare,
                }
            }
        };
    })
}

fn expand_hook(which: &Hook, attr: TokenStream, func: &ItemFn) -> syn::Result<TokenStream> {
    let macro_name = which.macro_name();
    args::no_args(attr, macro_name)?;
    args::hook_shape(func, macro_name)?;
    let params = args::plain_params(func, "a heartbeat hook")?;

    let ident = &func.sig.ident;
    let name = ident.to_string();
    let kind = which.kind();
    let arg_names: Vec<Ident> = (0..params.len())
        .map(|i| format_ident!("__dockerflow_arg{i}"))
        .collect();
    let extract = params.iter().zip(&arg_names).map(|(ty, arg)| {
        quote_spanned! {ty.span()=>
            let #arg: #ty = ::dockerflow::__private::FromReport::from_report(__dockerflow_report);
        }
    });
    let location = location(args::name_span(func));

    Ok(quote! {
        #[doc(hidden)]
        const _: () = {
            fn __dockerflow_hook(__dockerflow_report: &::dockerflow::__private::HeartbeatReport) {
                #(#extract)*
                #ident(#(#arg_names),*)
            }
            ::dockerflow::__private::inventory::submit! {
                ::dockerflow::__private::HookRecord {
                    kind: #kind,
                    name: #name,
                    location: #location,
                    call: __dockerflow_hook,
                }
            }
        };
    })
}

fn level_tokens(level: &str) -> TokenStream {
    let variant = match level {
        "debug" => quote!(Debug),
        "info" => quote!(Info),
        "warning" => quote!(Warning),
        "critical" => quote!(Critical),
        _ => quote!(Error),
    };
    quote!(::dockerflow::__private::Level::#variant)
}

/// `"src/checks.rs:12:4"`, pointing at the function's name.
fn location(span: Span) -> TokenStream {
    quote_spanned! {span=>
        ::core::concat!(::core::file!(), ":", ::core::line!(), ":", ::core::column!())
    }
}

fn not_a_fn(item: &TokenStream, macro_name: &str) -> syn::Error {
    syn::Error::new(
        item.span(),
        format!("`#[{macro_name}]` goes on a free `fn` or `async fn`"),
    )
}

/// The original item stays, so the rest of the crate still type-checks; the error sits on
/// the offending token.
fn input_and_compile_error(item: TokenStream, err: syn::Error) -> TokenStream {
    let error = err.to_compile_error();
    quote!(#item #error)
}
