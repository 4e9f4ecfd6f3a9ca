//! Parsing and validation: the attribute's arguments and the annotated function's signature.
//! Every mistake is recorded in [`Errors`] and parsing goes on, so a user sees them all at once.

use std::fmt::Display;

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::parse::{Parse, ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{
    Attribute, Error, FnArg, LitInt, LitStr, ReturnType, Signature, Token, Type, Visibility,
};

const CHECK_ARGS: &str =
    "accepted arguments: level = \"debug\" | \"info\" | \"warning\" | \"error\" | \"critical\", name = \"...\", id = \"...\", timeout_ms = <integer>";

/// The errors found so far, combined into one (serde_derive's `Ctxt`, without its drop bomb:
/// a macro never panics).
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    pub(crate) fn push(&mut self, err: Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    fn at(&mut self, span: Span, message: impl Display) {
        self.push(Error::new(span, message));
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The level a failing check reports, as `level = "..."` spells it.
#[derive(Clone, Copy, Default)]
pub(crate) enum Level {
    Debug,
    Info,
    Warning,
    #[default]
    Error,
    Critical,
}

const LEVELS: [(&str, Level); 5] = [
    ("debug", Level::Debug),
    ("info", Level::Info),
    ("warning", Level::Warning),
    ("error", Level::Error),
    ("critical", Level::Critical),
];

impl Parse for Level {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lit = string(input, "level")?;
        let value = lit.value();
        match LEVELS.iter().find(|(name, _)| *name == value) {
            Some((_, level)) => Ok(*level),
            None => Err(Error::new(
                lit.span(),
                format!("unknown level `{value}`; a check fails at one of: \"debug\", \"info\", \"warning\", \"error\", \"critical\""),
            )),
        }
    }
}

impl ToTokens for Level {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let variant = match self {
            Level::Debug => quote!(Debug),
            Level::Info => quote!(Info),
            Level::Warning => quote!(Warning),
            Level::Error => quote!(Error),
            Level::Critical => quote!(Critical),
        };
        tokens.extend(quote!(::dockerflow::__private::Level::#variant));
    }
}

/// What `#[check(...)]` was given, validated.
#[derive(Default)]
pub(crate) struct CheckArgs {
    pub(crate) level: Level,
    pub(crate) name: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) timeout_ms: Option<u64>,
}

impl CheckArgs {
    pub(crate) fn parse(attr: TokenStream, errors: &mut Errors) -> Self {
        let mut args = CheckArgs::default();
        let mut seen = Vec::new();
        let parser = syn::meta::parser(|meta| {
            let key = quote_path(&meta.path);
            if !meta.input.peek(Token![=]) {
                errors.at(
                    meta.path.span(),
                    format!("expected `key = value`; {CHECK_ARGS}"),
                );
                return skip_value(meta.input);
            }
            if seen.contains(&key) {
                errors.at(meta.path.span(), format!("`{key}` is given more than once"));
            }
            let input = meta.value()?;
            let parsed = match key.as_str() {
                "level" => Level::parse(input).map(|level| args.level = level),
                "name" => non_empty(input, "name").map(|name| args.name = Some(name)),
                "id" => non_empty(input, "id").map(|id| args.id = Some(id)),
                "timeout_ms" => timeout(input).map(|ms| args.timeout_ms = Some(ms)),
                _ => Err(Error::new(
                    meta.path.span(),
                    format!("unknown argument `{key}`; {CHECK_ARGS}"),
                )),
            };
            if let Err(err) = parsed {
                errors.push(err);
                skip_value(input)?;
            }
            seen.push(key);
            Ok(())
        });
        if let Err(err) = parser.parse2(attr) {
            errors.push(err);
        }
        args
    }
}

fn string(input: ParseStream<'_>, key: &str) -> syn::Result<LitStr> {
    input
        .parse()
        .map_err(|err| Error::new(err.span(), format!("`{key}` takes a string literal")))
}

fn non_empty(input: ParseStream<'_>, key: &str) -> syn::Result<String> {
    let lit = string(input, key)?;
    match lit.value() {
        value if value.trim().is_empty() => {
            Err(Error::new(lit.span(), format!("`{key}` must not be empty")))
        }
        value => Ok(value),
    }
}

fn timeout(input: ParseStream<'_>) -> syn::Result<u64> {
    let lit: LitInt = input
        .parse()
        .map_err(|err| Error::new(err.span(), "`timeout_ms` takes an integer literal"))?;
    match lit.base10_parse::<u64>()? {
        0 => Err(Error::new(lit.span(), "timeout_ms must be at least 1")),
        ms => Ok(ms),
    }
}

/// Steps over the rest of a rejected argument, up to the next comma.
fn skip_value(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

fn quote_path(path: &syn::Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}

/// Heartbeat hooks take no arguments.
pub(crate) fn no_args(attr: &TokenStream, macro_name: &str, errors: &mut Errors) {
    if !attr.is_empty() {
        errors.at(attr.span(), format!("`#[{macro_name}]` takes no arguments"));
    }
}

/// A `fn` item whose signature is parsed and whose body stays tokens (tracing-attributes'
/// `MaybeItemFn`): a body the user is still typing is the compiler's to report, not ours.
pub(crate) struct MaybeItemFn {
    pub(crate) sig: Signature,
}

impl Parse for MaybeItemFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        input.call(Attribute::parse_outer)?;
        input.parse::<Visibility>()?;
        let sig: Signature = input.parse()?;
        let body: Group = input.parse()?;
        if body.delimiter() != Delimiter::Brace {
            return Err(Error::new(body.span(), "expected a function body"));
        }
        Ok(MaybeItemFn { sig })
    }
}

/// The parameter types, after the checks common to checks and hooks: a free function, not
/// generic, not `unsafe`/`extern`, no `self`, no `impl Trait` parameter.
pub(crate) fn plain_params<'a>(
    sig: &'a Signature,
    what: &str,
    errors: &mut Errors,
) -> Vec<&'a Type> {
    if let Some(param) = sig.generics.params.first() {
        errors.at(
            param.span(),
            format!("{what} cannot be generic: the registry calls it with concrete types"),
        );
    }
    if let Some(wc) = &sig.generics.where_clause {
        errors.at(wc.span(), format!("{what} cannot have a where clause"));
    }
    if let Some(token) = &sig.unsafety {
        errors.at(token.span(), format!("{what} cannot be `unsafe`"));
    }
    if let Some(abi) = &sig.abi {
        errors.at(abi.span(), format!("{what} cannot be `extern`"));
    }
    if let Some(dots) = &sig.variadic {
        errors.at(dots.span(), format!("{what} cannot be variadic"));
    }
    let mut types = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.at(
                receiver.span(),
                format!("{what} cannot take `self`: annotate a free function"),
            ),
            FnArg::Typed(pat) if matches!(*pat.ty, Type::ImplTrait(_)) => errors.at(
                pat.ty.span(),
                format!("{what} cannot take `impl Trait`: name the concrete type"),
            ),
            FnArg::Typed(pat) => types.push(&*pat.ty),
        }
    }
    types
}

/// A check returns a value: `Result<(), E>` or `Vec<CheckMessage>`.
pub(crate) fn check_return<'a>(sig: &'a Signature, errors: &mut Errors) -> Option<&'a Type> {
    let span = match &sig.output {
        ReturnType::Type(_, ty) if !is_unit(ty) => return Some(ty),
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => sig.ident.span(),
    };
    errors.at(
        span,
        "a check must return its outcome: `Result<(), E>` where `E: Display`, `Vec<dockerflow::CheckMessage>`, or `Result<Vec<dockerflow::CheckMessage>, E>`",
    );
    None
}

/// A hook is a plain function that returns nothing.
pub(crate) fn hook_shape(sig: &Signature, macro_name: &str, errors: &mut Errors) {
    if let Some(token) = &sig.asyncness {
        errors.at(
            token.span(),
            format!("`#[{macro_name}]` takes a plain `fn`: hooks run while the response is written; spawn a task inside for async work"),
        );
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if !is_unit(ty) {
            errors.at(ty.span(), format!("`#[{macro_name}]` hooks return nothing"));
        }
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}
