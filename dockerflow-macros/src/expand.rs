//! Code generation: the user's item unchanged, then one registration in a `const _` block.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Signature, Type};

use crate::args::{self, CheckArgs, Errors, MaybeItemFn};

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
    let mut errors = Errors::default();
    let args = CheckArgs::parse(attr, &mut errors);
    let registration = signature(&item, "dockerflow::check", &mut errors)
        .and_then(|sig| check_registration(&args, &sig, &mut errors));
    item_then(item, registration, errors)
}

pub(crate) fn hook(which: Hook, attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let macro_name = which.macro_name();
    args::no_args(&attr, macro_name, &mut errors);
    let registration = signature(&item, macro_name, &mut errors)
        .map(|sig| hook_registration(&which, &sig, &mut errors));
    item_then(item, registration, errors)
}

fn check_registration(
    args: &CheckArgs,
    sig: &Signature,
    errors: &mut Errors,
) -> Option<TokenStream> {
    let params = args::plain_params(sig, "a check", errors);
    let output = args::check_return(sig, errors)?;

    let ident = &sig.ident;
    let name = args.name.clone().unwrap_or_else(|| ident.to_string());
    let id = args.id.clone().unwrap_or_else(|| name.clone());
    let level = args.level;
    let timeout_ms = match args.timeout_ms {
        Some(ms) => quote!(::core::option::Option::Some(#ms)),
        None => quote!(::core::option::Option::None),
    };
    let (arg_names, extract) = arguments(&params, |ty| {
        quote_spanned! {ty.span()=>
            match ::dockerflow::__private::FromCheckContext::from_context(__dockerflow_ctx) {
                ::core::result::Result::Ok(value) => value,
                ::core::result::Result::Err(missing) => return ::dockerflow::__private::Prepared::failed(missing),
            }
        }
    });
    let assert_output = quote_spanned! {output.span()=>
        ::dockerflow::__private::assert_check_outcome::<#output>();
    };
    let run = if sig.asyncness.is_some() {
        quote!(::dockerflow::__private::Prepared::future(async move { #ident(#(#arg_names),*).await }))
    } else {
        quote!(::dockerflow::__private::Prepared::blocking(move || #ident(#(#arg_names),*)))
    };
    let location = location(ident.span());

    Some(register(
        quote! {
            fn __dockerflow_prepare(
                __dockerflow_ctx: &::dockerflow::__private::CheckContext<'_>,
            ) -> ::dockerflow::__private::Prepared {
                #assert_output
                #extract
                #run
            }
        },
        quote! {
            ::dockerflow::__private::CheckRecord {
                name: #name,
                id: #id,
                level: #level,
                timeout_ms: #timeout_ms,
                location: #location,
                prepare: __dockerflow_prepare,
            }
        },
    ))
}

fn hook_registration(which: &Hook, sig: &Signature, errors: &mut Errors) -> TokenStream {
    args::hook_shape(sig, which.macro_name(), errors);
    let params = args::plain_params(sig, "a heartbeat hook", errors);

    let ident = &sig.ident;
    let name = ident.to_string();
    let kind = which.kind();
    let (arg_names, extract) = arguments(&params, |ty| {
        quote_spanned! {ty.span()=>
            ::dockerflow::__private::FromReport::from_report(__dockerflow_report)
        }
    });
    let location = location(ident.span());

    register(
        quote! {
            fn __dockerflow_hook(__dockerflow_report: &::dockerflow::__private::HeartbeatReport) {
                #extract
                #ident(#(#arg_names),*)
            }
        },
        quote! {
            ::dockerflow::__private::HookRecord {
                kind: #kind,
                name: #name,
                location: #location,
                call: __dockerflow_hook,
            }
        },
    )
}

/// The one shape of every registration: a shim next to the record that points at it, in an
/// anonymous `const` that names only `::dockerflow::__private` and `::core` (serde_derive's
/// `dummy.rs`, with its allow-list for lints the user's crate may turn on).
fn register(shim: TokenStream, record: TokenStream) -> TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(
            non_upper_case_globals,
            unused_attributes,
            unused_qualifications,
            clippy::absolute_paths,
        )]
        const _: () = {
            #shim
            ::dockerflow::__private::inventory::submit! { #record }
        };
    }
}

/// One `let __dockerflow_argN: Type = <value>;` per parameter, each at its type's span so the
/// compiler reports an unsupported argument type there; and the names to call the function with.
fn arguments(params: &[&Type], value: impl Fn(&Type) -> TokenStream) -> (Vec<Ident>, TokenStream) {
    let names: Vec<Ident> = (0..params.len())
        .map(|i| format_ident!("__dockerflow_arg{i}"))
        .collect();
    let lets = params.iter().zip(&names).map(|(ty, name)| {
        let value = value(ty);
        quote_spanned!(ty.span()=> let #name: #ty = #value;)
    });
    let lets = quote!(#(#lets)*);
    (names, lets)
}

/// `"src/checks.rs:12:4"`, pointing at the function's name.
fn location(span: Span) -> TokenStream {
    quote_spanned! {span=>
        ::core::concat!(::core::file!(), ":", ::core::line!(), ":", ::core::column!())
    }
}

/// The annotated function's signature, or an error when the item is not a `fn` with a body.
fn signature(item: &TokenStream, macro_name: &str, errors: &mut Errors) -> Option<Signature> {
    match syn::parse2::<MaybeItemFn>(item.clone()) {
        Ok(func) => Some(func.sig),
        Err(_) => {
            errors.push(syn::Error::new(
                item.span(),
                format!("`#[{macro_name}]` goes on a free `fn` or `async fn`"),
            ));
            None
        }
    }
}

/// The original item always stays, so the rest of the crate still type-checks; then the
/// registration, or every error found, each on its offending token.
fn item_then(item: TokenStream, registration: Option<TokenStream>, errors: Errors) -> TokenStream {
    match errors.finish() {
        Ok(()) => quote!(#item #registration),
        Err(err) => {
            let error = err.to_compile_error();
            quote!(#item #error)
        }
    }
}
