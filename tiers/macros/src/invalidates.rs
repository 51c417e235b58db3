//! `#[invalidates]`: after the function succeeds, delete keys and invalidate patterns.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, ItemFn, LitStr, Token};

use crate::common::{args_of, format_key, hidden, returns_of, template, Returns};

enum Item {
    Key(LitStr),
    Option(Ident, Expr),
}

impl Parse for Item {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(LitStr) {
            return Ok(Item::Key(input.parse()?));
        }
        let name: Ident = input.parse().map_err(|error| {
            syn::Error::new(
                error.span(),
                "expected a key template in quotes (\"user:{id}\", \"users:list:*\") or \
                 `cache = EXPR` / `key_prefix = \"...\"`",
            )
        })?;
        input.parse::<Token![=]>()?;
        Ok(Item::Option(name, input.parse()?))
    }
}

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let items = syn::parse::Parser::parse2(Punctuated::<Item, Token![,]>::parse_terminated, attr)?;
    let function: ItemFn = syn::parse2(item)?;
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span,
            "#[invalidates] supports `async fn` only: invalidating every tier is async",
        ));
    }
    let mut cache = None;
    let mut prefix = String::new();
    let mut templates = Vec::new();
    for item in items {
        match item {
            Item::Key(lit) => templates.push(lit),
            Item::Option(name, expr) if name == "cache" => cache = Some(expr),
            Item::Option(name, expr) if name == "key_prefix" => match expr {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(lit),
                    ..
                }) => prefix = lit.value(),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "`key_prefix` is a string literal",
                    ))
                }
            },
            Item::Option(name, _) => {
                return Err(syn::Error::new(
                    name.span(),
                    "unknown #[invalidates] option; expected key templates, `cache` or \
                     `key_prefix`",
                ))
            }
        }
    }
    let Some(cache) = cache else {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[invalidates] needs the cache to invalidate: \
             `#[invalidates(\"user:{id}\", cache = EXPR)]`",
        ));
    };
    if templates.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[invalidates] needs at least one key or pattern: `#[invalidates(\"user:{id}\", \
             \"users:list:*\", cache = EXPR)]`",
        ));
    }
    let args = args_of(sig, "invalidates")?;
    let cache_var = hidden("__strata_cache");
    let out = hidden("__strata_out");
    let succeeded = match returns_of(sig, "invalidates") {
        Ok(Returns::Result { .. }) => quote!(::core::result::Result::is_ok(&#out)),
        _ => quote!(true),
    };
    let mut computed = Vec::new();
    let mut invalidations = Vec::new();
    for (index, lit) in templates.iter().enumerate() {
        let template = template(lit, &prefix, &args, &sig.ident)?;
        let var = hidden(&format!("__strata_key_{index}"));
        let format = format_key(&template, lit.span());
        computed.push(quote!(let #var: ::std::string::String = #format;));
        invalidations.push(if template.is_pattern {
            quote!(::strata::__private::delete_pattern(#cache_var, &#var).await;)
        } else {
            quote!(::strata::__private::delete(#cache_var, &#var).await;)
        });
    }
    let attrs = &function.attrs;
    let vis = &function.vis;
    let body = &function.block;
    let output = match &sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            let #cache_var = &(#cache);
            // Keys from the arguments as they were passed, before the body may consume them.
            #(#computed)*
            let #out: #output = async #body.await;
            if #succeeded {
                #(#invalidations)*
            }
            #out
        }
    })
}
