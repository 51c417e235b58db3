//! What both macros share: the function's shape (arguments, return kind), key templates and
//! TTLs, each checked with an error that points at the offending token.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, Ident, LitStr, Pat, PathArguments, ReturnType, Signature, Type};

/// A plain argument of the function (`id: u64`).
pub struct Arg {
    pub ident: Ident,
    pub ty: Type,
}

/// The function's arguments, after checking that each is a plain name.
pub fn args_of(sig: &Signature, macro_name: &str) -> syn::Result<Vec<Arg>> {
    let mut args = Vec::new();
    for input in &sig.inputs {
        let FnArg::Typed(typed) = input else { continue };
        match &*typed.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => args.push(Arg {
                ident: pat.ident.clone(),
                ty: (*typed.ty).clone(),
            }),
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    format!(
                        "#[{macro_name}] needs plain argument names (`id: u64`), not patterns: \
                         keys are built from the arguments by name"
                    ),
                ))
            }
        }
    }
    Ok(args)
}

/// The signature without `mut` on its arguments (for the wrappers, which only pass them on).
pub fn without_mut(sig: &Signature) -> Signature {
    let mut sig = sig.clone();
    for input in &mut sig.inputs {
        if let FnArg::Typed(typed) = input {
            if let Pat::Ident(pat) = &mut *typed.pat {
                pat.mutability = None;
            }
        }
    }
    sig
}

/// What the function returns, which decides what is cached.
#[allow(clippy::large_enum_variant)] // one per macro call
pub enum Returns {
    /// `Result<T, E>` (or an alias such as `io::Result<T>`): `Ok` cached. The error type,
    /// when written out.
    Result { value: Type, error: Option<Type> },
    /// `Option<T>`: `Some` cached.
    Option { value: Type },
    /// Anything else: always cached.
    Value,
}

pub fn returns_of(sig: &Signature, macro_name: &str) -> syn::Result<Returns> {
    let ty = match &sig.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => {
            return Err(syn::Error::new(
                sig.ident.span(),
                format!("#[{macro_name}] needs a function that returns a value (T, Option<T> or Result<T, E>)"),
            ))
        }
    };
    if let Type::Path(path) = &ty {
        if let Some(last) = path.path.segments.last() {
            let types: Vec<Type> = match &last.arguments {
                PathArguments::AngleBracketed(args) => args
                    .args
                    .iter()
                    .filter_map(|arg| match arg {
                        GenericArgument::Type(ty) => Some(ty.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if last.ident == "Result" && !types.is_empty() {
                return Ok(Returns::Result {
                    value: types[0].clone(),
                    error: types.get(1).cloned(),
                });
            }
            if last.ident == "Option" && types.len() == 1 {
                return Ok(Returns::Option {
                    value: types[0].clone(),
                });
            }
        }
    }
    Ok(Returns::Value)
}

/// A piece of a key template: literal text, or an argument's value.
pub enum Part {
    Text(String),
    Arg(Ident),
}

/// A parsed key template: the `format!` string and the arguments it names, in order.
pub struct Template {
    pub format: String,
    pub names: Vec<Ident>,
    /// The template in order, for building the key without `format!`.
    pub parts: Vec<Part>,
    /// Glob characters (`*`, `?`, `[`) outside the placeholders: an invalidation pattern.
    pub is_pattern: bool,
}

/// Parses `"user:{id}"` against the function's arguments. `{{` and `}}` are literal braces.
pub fn template(
    lit: &LitStr,
    prefix: &str,
    args: &[Arg],
    fn_name: &Ident,
) -> syn::Result<Template> {
    let text = lit.value();
    let mut format = escape_braces(prefix);
    let mut names: Vec<Ident> = Vec::new();
    let mut parts = vec![Part::Text(prefix.to_owned())];
    let text_part = |parts: &mut Vec<Part>, c: char| match parts.last_mut() {
        Some(Part::Text(text)) => text.push(c),
        _ => parts.push(Part::Text(c.to_string())),
    };
    let mut is_pattern = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                format.push_str("{{");
                text_part(&mut parts, '{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                format.push_str("}}");
                text_part(&mut parts, '}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => {
                            return Err(syn::Error::new(
                                lit.span(),
                                "unclosed `{` in key template (write `{{` for a literal brace)",
                            ))
                        }
                    }
                }
                let name = name.trim();
                let Some(arg) = args.iter().find(|arg| arg.ident == name) else {
                    let known: Vec<String> =
                        args.iter().map(|arg| format!("`{}`", arg.ident)).collect();
                    let known = if known.is_empty() {
                        "it takes none".to_owned()
                    } else {
                        format!("its arguments are {}", known.join(", "))
                    };
                    return Err(syn::Error::new(
                        lit.span(),
                        format!(
                            "`{{{name}}}` in this key template is not an argument of `{fn_name}` ({known})"
                        ),
                    ));
                };
                format.push('{');
                format.push_str(&arg.ident.to_string());
                format.push('}');
                parts.push(Part::Arg(arg.ident.clone()));
                if !names.contains(&arg.ident) {
                    names.push(arg.ident.clone());
                }
            }
            '}' => {
                return Err(syn::Error::new(
                    lit.span(),
                    "unmatched `}` in key template (write `}}` for a literal brace)",
                ))
            }
            '\\' => {
                // An escaped glob character stays escaped (and literal) in a pattern.
                format.push(c);
                text_part(&mut parts, c);
                if let Some(next) = chars.next() {
                    format.push_str(&escape_braces(&next.to_string()));
                    text_part(&mut parts, next);
                }
            }
            '*' | '?' | '[' => {
                is_pattern = true;
                format.push(c);
                text_part(&mut parts, c);
            }
            c => {
                format.push(c);
                text_part(&mut parts, c);
            }
        }
    }
    Ok(Template {
        format,
        names,
        parts,
        is_pattern,
    })
}

fn escape_braces(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

/// `format!(template, name = name, ...)`; each value escaped for a pattern.
pub fn format_key(template: &Template, span: Span) -> TokenStream {
    let format = LitStr::new(&template.format, span);
    let values = template.names.iter().map(|name| {
        if template.is_pattern {
            quote_spanned!(name.span()=> #name = ::strata::__private::escape_glob(&#name))
        } else {
            quote_spanned!(name.span()=> #name = #name)
        }
    });
    quote!(::std::format!(#format, #(#values),*))
}

/// Statements that append the key to the `String` named `buf`, piece by piece: literal text
/// with `push_str`, integers and strings without the formatting machinery, anything else by
/// `Display` (the same text `format!` gives).
pub fn push_key(template: &Template, buf: &Ident) -> TokenStream {
    let pushes = template.parts.iter().map(|part| match part {
        Part::Text(text) if text.is_empty() => quote!(),
        Part::Text(text) => quote!(#buf.push_str(#text);),
        // The borrow picks the fast path or `Display` (autoref specialization).
        Part::Arg(name) => quote_spanned!(name.span()=>
            #[allow(clippy::needless_borrow)]
            let () = (&::strata::__private::KeyArg(&#name)).push_key(#buf);
        ),
    });
    quote!({
        #[allow(unused_imports)]
        use ::strata::__private::{PushDisplay as _, PushFast as _};
        #(#pushes)*
    })
}

/// `"5m"`, `"90s"`, `"1h30m"`, `"250ms"`, `"2d"` in milliseconds.
pub fn ttl_millis(lit: &LitStr) -> syn::Result<u64> {
    let text = lit.value();
    let error = || {
        syn::Error::new(
            lit.span(),
            format!(
                "cannot read {text:?} as a TTL: write numbers with units (ms, s, m, h, d), \
                 such as \"90s\", \"5m\" or \"1h30m\""
            ),
        )
    };
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(error());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(error());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| error())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match rest[..unit_len].trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(error()),
        };
        rest = &rest[unit_len..];
        total = number
            .checked_mul(factor)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(error)?;
    }
    if total == 0 {
        return Err(syn::Error::new(
            lit.span(),
            "a TTL of zero would cache nothing",
        ));
    }
    Ok(total)
}

/// The `Option<Duration>` expression of a TTL.
pub fn ttl_tokens(ttl: Option<u64>) -> TokenStream {
    match ttl {
        Some(ms) => quote!(::core::option::Option::Some(::core::time::Duration::from_millis(#ms))),
        None => quote!(::core::option::Option::None),
    }
}

/// A variable of the expansion that the function's own code cannot name.
pub fn hidden(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(text: &str) -> LitStr {
        LitStr::new(text, Span::call_site())
    }

    #[test]
    fn ttls_read_units_and_refuse_the_rest() {
        assert_eq!(ttl_millis(&lit("250ms")).unwrap(), 250);
        assert_eq!(ttl_millis(&lit("90s")).unwrap(), 90_000);
        assert_eq!(ttl_millis(&lit("1h30m")).unwrap(), 5_400_000);
        assert_eq!(ttl_millis(&lit("2d")).unwrap(), 172_800_000);
        for bad in ["", "5", "m", "5 minutes", "0s", "99999999999999999999d"] {
            assert!(ttl_millis(&lit(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn templates_name_arguments_and_spot_patterns() {
        let args: Vec<Arg> = ["id", "page"]
            .iter()
            .map(|name| Arg {
                ident: Ident::new(name, Span::call_site()),
                ty: syn::parse_quote!(u64),
            })
            .collect();
        let name = Ident::new("f", Span::call_site());
        let key = template(&lit("user:{id}:{{x}}:{id}"), "p{", &args, &name).unwrap();
        assert_eq!(key.format, "p{{user:{id}:{{x}}:{id}");
        assert_eq!(key.names.len(), 1);
        assert!(!key.is_pattern);
        let pattern = template(&lit("list:{page}:*"), "", &args, &name).unwrap();
        assert!(pattern.is_pattern);
        assert!(!template(&lit("a\\*"), "", &args, &name).unwrap().is_pattern);
        let Err(error) = template(&lit("user:{uid}"), "", &args, &name) else {
            panic!("an unknown argument was accepted");
        };
        assert!(error.to_string().contains("`id`, `page`"), "{error}");
        assert!(template(&lit("user:{id"), "", &args, &name).is_err());
        assert!(template(&lit("user:}"), "", &args, &name).is_err());
    }
}
