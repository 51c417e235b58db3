//! `#[cached]`: the memoized function and its three companions.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ItemFn, LitBool, LitStr};

use crate::common::{
    args_of, format_key, hidden, push_key, returns_of, template, ttl_millis, ttl_tokens,
    without_mut, Arg, Returns,
};

/// The attribute's options.
#[derive(Default)]
struct Options {
    cache: Option<Expr>,
    ttl: Option<u64>,
    key: Option<LitStr>,
    key_prefix: Option<LitStr>,
    namespace: Option<LitStr>,
    cache_none: bool,
}

fn parse_options(attr: TokenStream) -> syn::Result<Options> {
    let mut options = Options::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("cache") {
            options.cache = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("ttl") {
            let lit: LitStr = meta.value()?.parse()?;
            options.ttl = Some(ttl_millis(&lit)?);
        } else if meta.path.is_ident("key") {
            options.key = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("key_prefix") {
            options.key_prefix = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("namespace") {
            options.namespace = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("cache_none") {
            let lit: LitBool = meta.value()?.parse()?;
            options.cache_none = lit.value;
        } else {
            return Err(meta.error(
                "unknown #[cached] option; expected `cache`, `ttl`, `key`, `key_prefix`, \
                 `namespace` or `cache_none`",
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(options)
}

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let options = parse_options(attr)?;
    let function: ItemFn = syn::parse2(item)?;
    let sig = &function.sig;
    let name = &sig.ident;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span,
            "#[cached] supports `async fn` only: it loads through the tiered cache, whose \
             single-flight and lower tiers are async. For a synchronous function, memoize \
             in the L1 engine with `strata::Cache::get_or_insert_with`",
        ));
    }
    let Some(cache) = &options.cache else {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[cached] needs the cache to use: `#[cached(cache = EXPR)]`, where EXPR is a \
             `TieredCache<V, C>` (or derefs to one: a static `LazyLock`, an `Arc`, a field of an \
             argument such as `state.cache`)",
        ));
    };
    let args = args_of(sig, "cached")?;
    let returns = returns_of(sig, "cached")?;
    let prefix = options
        .key_prefix
        .as_ref()
        .map(LitStr::value)
        .unwrap_or_default();
    let receiver = sig.receiver();

    // The key, as an `Option<String>` expression (`None`: could not encode, run uncached);
    // and the same key written into a buffer `__strata_buf` (a `bool` block: `false` if it
    // could not be encoded), for the L1 fast path.
    let buf = hidden("__strata_buf");
    let (key, key_into_buf) = match &options.key {
        Some(lit) => {
            let template = template(lit, &prefix, &args, name)?;
            let format = format_key(&template, lit.span());
            let pushes = push_key(&template, &buf);
            (
                quote!(::core::option::Option::Some(#format)),
                quote!({ #pushes true }),
            )
        }
        None => {
            let namespace =
                match &options.namespace {
                    Some(lit) => quote!(#lit),
                    None if receiver.is_some() => return Err(syn::Error::new(
                        name.span(),
                        "a memoized method needs `namespace = \"...\"` or a `key` template: the \
                         default key names a function by its module path, which does not tell \
                         two impls apart",
                    )),
                    None => {
                        let name = name.to_string();
                        quote!(::core::concat!(::core::module_path!(), "::", #name))
                    }
                };
            let encoder = hidden("__strata_key");
            let pushes: Vec<_> = args
                .iter()
                .map(|Arg { ident, ty }| quote_spanned!(ty.span()=> #encoder.arg(&#ident);))
                .collect();
            (
                quote!({
                    let mut #encoder = ::strata::__private::KeyEncoder::new(#prefix, #namespace);
                    #(#pushes)*
                    #encoder.finish()
                }),
                quote!({
                    let mut #encoder =
                        ::strata::__private::KeyWriter::new(#buf, #prefix, #namespace);
                    #(#pushes)*
                    #encoder.finish()
                }),
            )
        }
    };

    let ttl = ttl_tokens(options.ttl);
    let hit = hidden("__strata_hit");
    let (memo, refresh, value_ty, error_ty, wrap_hit) = match &returns {
        Returns::Result { value, error } => (
            quote!(memo_result),
            quote!(refresh_result),
            value.clone(),
            error.clone(),
            quote!(::core::result::Result::Ok(#hit)),
        ),
        Returns::Option { value } if !options.cache_none => (
            quote!(memo_option),
            quote!(refresh_option),
            value.clone(),
            None,
            quote!(::core::option::Option::Some(#hit)),
        ),
        Returns::Option { .. } | Returns::Value => {
            let syn::ReturnType::Type(_, ty) = &sig.output else {
                unreachable!("returns_of refuses a function without a return type")
            };
            (
                quote!(memo_value),
                quote!(refresh_value),
                (**ty).clone(),
                None,
                quote!(#hit),
            )
        }
    };
    let value_check = quote_spanned!(value_ty.span()=>
        let _ = ::strata::__private::assert_cacheable::<#value_ty>;
    );
    let error_check = error_ty.map(|error| {
        quote_spanned!(error.span()=>
            let _ = ::strata::__private::assert_shareable_error::<#error>;
        )
    });

    let uncached = format_ident!("{}_uncached", name);
    let refresh_name = format_ident!("{}_refresh", name);
    let invalidate_name = format_ident!("{}_invalidate", name);
    let arg_names: Vec<_> = args.iter().map(|arg| &arg.ident).collect();
    let call = match receiver {
        Some(receiver) => {
            let self_token = &receiver.self_token;
            quote!(Self::#uncached(#self_token, #(#arg_names),*))
        }
        None => quote!(#uncached(#(#arg_names),*)),
    };

    let vis = &function.vis;
    let attrs = &function.attrs;
    let passed_on: Vec<&Attribute> = attrs
        .iter()
        .filter(|attr| !attr.path().is_ident("doc"))
        .collect();
    let body = &function.block;

    let wrapper_sig = without_mut(sig);
    let mut uncached_sig = sig.clone();
    uncached_sig.ident = uncached.clone();
    let mut refresh_sig = wrapper_sig.clone();
    refresh_sig.ident = refresh_name;
    let mut invalidate_sig = wrapper_sig.clone();
    invalidate_sig.ident = invalidate_name;
    invalidate_sig.output =
        syn::parse_quote!(-> ::core::result::Result<bool, ::strata::CacheError>);

    let cache_var = hidden("__strata_cache");
    let key_var = hidden("__strata_key");
    let name_str = name.to_string();
    let uncached_doc =
        format!(" Runs [`{name_str}`] without the cache (neither read nor written).");
    let refresh_doc = format!(
        " Runs [`{name_str}`]'s body and stores what it returns under these arguments' key \
         (an `Err` stores nothing; a `None` that is not cached removes the entry), for every \
         later call to see."
    );
    let invalidate_doc = format!(
        " Removes the entry of [`{name_str}`] for these arguments from every tier; `Ok(true)` if \
         one was found."
    );

    Ok(quote! {
        #(#attrs)*
        #vis #wrapper_sig {
            #value_check
            #error_check
            let #cache_var = &(#cache);
            // An L1 hit answers here, its key built in a reused buffer: no allocation.
            if let ::core::option::Option::Some(#hit) =
                ::strata::__private::l1_hit(#cache_var, |#buf: &mut ::std::string::String| #key_into_buf)
            {
                return #wrap_hit;
            }
            let #key_var: ::core::option::Option<::std::string::String> = #key;
            // The miss path, boxed: this function's own future stays small, which keeps a hit
            // cheap (a large future costs its copies even when the hit never polls the rest).
            ::std::boxed::Box::pin(
                ::strata::__private::#memo(#cache_var, #key_var, #ttl, move || #call),
            )
            .await
        }

        #[doc = #uncached_doc]
        #(#passed_on)*
        #vis #uncached_sig #body

        #[doc = #refresh_doc]
        #(#passed_on)*
        #vis #refresh_sig {
            let #cache_var = &(#cache);
            let #key_var: ::core::option::Option<::std::string::String> = #key;
            ::strata::__private::#refresh(#cache_var, #key_var, #ttl, #call).await
        }

        #[doc = #invalidate_doc]
        #[allow(unused_variables)]
        #(#passed_on)*
        #vis #invalidate_sig {
            let #cache_var = &(#cache);
            let #key_var: ::core::option::Option<::std::string::String> = #key;
            ::strata::__private::invalidate_key(#cache_var, #key_var).await
        }
    })
}
