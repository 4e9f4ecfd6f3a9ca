//! Parsing and validation of the attribute arguments and of the annotated function.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Error, FnArg, ItemFn, LitInt, LitStr, Meta, ReturnType, Token, Type};

const CHECK_ARGS: &str =
    "accepted arguments: level = \"debug\" | \"info\" | \"warning\" | \"error\" | \"critical\", name = \"...\", id = \"...\", timeout_ms = <integer>";

const LEVELS: &[&str] = &["debug", "info", "warning", "error", "critical"];

/// What `#[check(...)]` was given, validated.
pub(crate) struct CheckArgs {
    /// One of [`LEVELS`]; `error` when not given.
    pub(crate) level: String,
    pub(crate) name: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) timeout_ms: Option<u64>,
}

impl Parse for CheckArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut level: Option<LitStr> = None;
        let mut name: Option<LitStr> = None;
        let mut id: Option<LitStr> = None;
        let mut timeout_ms: Option<LitInt> = None;
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated(input)?;
        for meta in metas {
            let nv = match meta {
                Meta::NameValue(nv) => nv,
                other => {
                    return Err(Error::new(
                        other.span(),
                        format!("expected `key = value`; {CHECK_ARGS}"),
                    ))
                }
            };
            let key = nv
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            let value = nv.value;
            match key.as_str() {
                "level" => set_once(&mut level, parse_value(&value, "level")?, &nv.path)?,
                "name" => set_once(&mut name, parse_value(&value, "name")?, &nv.path)?,
                "id" => set_once(&mut id, parse_value(&value, "id")?, &nv.path)?,
                "timeout_ms" => set_once(
                    &mut timeout_ms,
                    parse_value(&value, "timeout_ms")?,
                    &nv.path,
                )?,
                _ => {
                    return Err(Error::new(
                        nv.path.span(),
                        format!("unknown argument `{}`; {CHECK_ARGS}", quote_path(&nv.path)),
                    ))
                }
            }
        }

        let level = match level {
            None => "error".to_owned(),
            Some(lit) if LEVELS.contains(&lit.value().as_str()) => lit.value(),
            Some(lit) => {
                return Err(Error::new(
                    lit.span(),
                    format!(
                        "unknown level `{}`; a check fails at one of: \"debug\", \"info\", \"warning\", \"error\", \"critical\"",
                        lit.value()
                    ),
                ))
            }
        };
        for lit in [&name, &id].into_iter().flatten() {
            if lit.value().trim().is_empty() {
                return Err(Error::new(lit.span(), "must not be empty"));
            }
        }
        let timeout_ms = match timeout_ms {
            None => None,
            Some(lit) => match lit.base10_parse::<u64>()? {
                0 => return Err(Error::new(lit.span(), "timeout_ms must be at least 1")),
                n => Some(n),
            },
        };
        Ok(CheckArgs {
            level,
            name: name.map(|l| l.value()),
            id: id.map(|l| l.value()),
            timeout_ms,
        })
    }
}

fn parse_value<T: Parse>(value: &syn::Expr, key: &str) -> syn::Result<T> {
    let tokens = quote::quote!(#value);
    syn::parse2::<T>(tokens).map_err(|_| {
        let expected = if key == "timeout_ms" {
            "an integer literal"
        } else {
            "a string literal"
        };
        Error::new(value.span(), format!("`{key}` takes {expected}"))
    })
}

fn set_once<T>(slot: &mut Option<T>, value: T, path: &syn::Path) -> syn::Result<()> {
    if slot.is_some() {
        return Err(Error::new(
            path.span(),
            format!("`{}` is given more than once", quote_path(path)),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn quote_path(path: &syn::Path) -> String {
    quote::quote!(#path).to_string().replace(' ', "")
}

/// Heartbeat hooks take no arguments.
pub(crate) fn no_args(attr: TokenStream, macro_name: &str) -> syn::Result<()> {
    if attr.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        attr.span(),
        format!("`#[{macro_name}]` takes no arguments"),
    ))
}

pub(crate) fn parse_check_args(attr: TokenStream) -> syn::Result<CheckArgs> {
    CheckArgs::parse.parse2(attr)
}

/// The annotated function's parameter types, after the checks common to checks and hooks:
/// a free function, not generic, not `unsafe`/`extern`, no `self`, no `impl Trait` parameter.
pub(crate) fn plain_params<'a>(func: &'a ItemFn, what: &str) -> syn::Result<Vec<&'a Type>> {
    let sig = &func.sig;
    if let Some(param) = sig.generics.params.first() {
        return Err(Error::new(
            param.span(),
            format!("{what} cannot be generic: the registry calls it with concrete types"),
        ));
    }
    if let Some(wc) = &sig.generics.where_clause {
        return Err(Error::new(
            wc.span(),
            format!("{what} cannot have a where clause"),
        ));
    }
    if let Some(token) = &sig.unsafety {
        return Err(Error::new(
            token.span(),
            format!("{what} cannot be `unsafe`"),
        ));
    }
    if let Some(abi) = &sig.abi {
        return Err(Error::new(abi.span(), format!("{what} cannot be `extern`")));
    }
    if let Some(dots) = &sig.variadic {
        return Err(Error::new(
            dots.span(),
            format!("{what} cannot be variadic"),
        ));
    }
    let mut types = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                return Err(Error::new(
                    receiver.span(),
                    format!("{what} cannot take `self`: annotate a free function"),
                ))
            }
            FnArg::Typed(pat) => {
                if let Type::ImplTrait(_) = &*pat.ty {
                    return Err(Error::new(
                        pat.ty.span(),
                        format!("{what} cannot take `impl Trait`: name the concrete type"),
                    ));
                }
                types.push(&*pat.ty);
            }
        }
    }
    Ok(types)
}

/// A check returns a value: `Result<(), E>` or `Vec<CheckMessage>`.
pub(crate) fn check_return(func: &ItemFn) -> syn::Result<&Type> {
    match &func.sig.output {
        ReturnType::Type(_, ty) if !is_unit(ty) => Ok(ty),
        output => {
            let span = match output {
                ReturnType::Default => func.sig.ident.span(),
                ReturnType::Type(_, ty) => ty.span(),
            };
            Err(Error::new(
                span,
                "a check must return its outcome: `Result<(), E>` where `E: Display`, `Vec<dockerflow::CheckMessage>`, or `Result<Vec<dockerflow::CheckMessage>, E>`",
            ))
        }
    }
}

/// A hook is a plain function that returns nothing.
pub(crate) fn hook_shape(func: &ItemFn, macro_name: &str) -> syn::Result<()> {
    if let Some(token) = &func.sig.asyncness {
        return Err(Error::new(
            token.span(),
            format!("`#[{macro_name}]` takes a plain `fn`: hooks run while the response is written; spawn a task inside for async work"),
        ));
    }
    if let ReturnType::Type(_, ty) = &func.sig.output {
        if !is_unit(ty) {
            return Err(Error::new(
                ty.span(),
                format!("`#[{macro_name}]` hooks return nothing"),
            ));
        }
    }
    Ok(())
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// The span of the function's name, used for the registered source location.
pub(crate) fn name_span(func: &ItemFn) -> Span {
    func.sig.ident.span()
}
