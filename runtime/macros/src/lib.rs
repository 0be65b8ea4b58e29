//! `#[percore::main]` and `#[percore::test]`: run an `async fn` on a percore
//! runtime. Use them through the `percore` crate (its default feature
//! `macros`), not from this crate directly.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, Meta, Token};

/// Runs an `async fn main` on a percore runtime.
///
/// Without options the body runs like [`percore::run`]: one core, on the
/// main thread. Options (all optional, comma-separated):
///
/// | option | effect |
/// |---|---|
/// | `cores = N` | run the body on `N` cores through `Runtime::builder().cores(N).build()?.run_on_every_core(..)`: every core runs it, [`percore::core_id`] tells them apart |
/// | `entries = N` | SQ entries of each core's ring ([`percore::Builder::entries`]) |
/// | `sqpoll` / `sqpoll = MS` | a kernel SQ polling thread that sleeps after `MS` ms idle (bare: 1000) |
/// | `pin = true` | pin core `i` to the `i`-th allowed CPU (needs `cores`) |
/// | `signals` | SIGINT/SIGTERM start a graceful shutdown ([`percore::shutdown`]; needs `cores`) |
/// | `grace = MS` | the shutdown's grace period ([`percore::Builder::shutdown_grace`]; needs `cores`) |
///
/// `main` may return `()` or a `Result`. With `cores = N`, the result is
/// the `Err` of the lowest-numbered core that returned one (else core 0's
/// `Ok`), and a panic on any core stops the others and panics with its
/// message.
///
/// # Examples
///
/// ```
/// #[percore::main]
/// async fn main() -> std::io::Result<()> {
///     let h = percore::spawn(async { 40 + 2 });
///     assert_eq!(h.await?, 42);
///     Ok(())
/// }
/// ```
///
/// On two cores, each running the body:
///
/// ```
/// #[percore::main(cores = 2, entries = 256)]
/// async fn main() {
///     assert!(percore::core_id() < 2);
///     assert_eq!(percore::cores(), 2);
/// }
/// ```
///
/// Unknown options, and functions that are not `async`, do not compile:
///
/// ```compile_fail
/// #[percore::main(threads = 2)] // error: unknown option `threads`
/// async fn main() {}
/// ```
///
/// ```compile_fail
/// #[percore::main] // error: the function must be `async`
/// fn main() {}
/// ```
///
/// [`percore::run`]: https://docs.rs/percore/latest/percore/fn.run.html
/// [`percore::core_id`]: https://docs.rs/percore/latest/percore/fn.core_id.html
/// [`percore::Builder::entries`]: https://docs.rs/percore/latest/percore/struct.Builder.html#method.entries
/// [`percore::shutdown`]: https://docs.rs/percore/latest/percore/shutdown/index.html
/// [`percore::Builder::shutdown_grace`]: https://docs.rs/percore/latest/percore/struct.Builder.html#method.shutdown_grace
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Main, args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Runs an `async fn` test on a fresh percore runtime.
///
/// Takes the options of [`main`](macro@main). With `cores = N` the body
/// runs on every core (useful to test code that crosses cores); the test
/// fails if any core panics or returns an `Err`. Other attributes
/// (`#[should_panic]`, `#[ignore]`) are kept; do not add `#[test]` too.
///
/// # Examples
///
/// ```
/// #[percore::test]
/// async fn sleeps() {
///     percore::time::sleep(std::time::Duration::from_millis(1)).await;
/// }
///
/// #[percore::test(cores = 2)]
/// async fn every_core_runs_it() -> Result<(), percore::JoinError> {
///     let other = 1 - percore::core_id();
///     let there = percore::spawn_on(other, || async { percore::core_id() }).await?;
///     assert_eq!(there, other);
///     Ok(())
/// }
/// ```
///
/// ```compile_fail
/// #[percore::test(pin = true)] // error: `pin` needs `cores = N`
/// async fn pinned() {}
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Test, args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Main,
    Test,
}

/// The parsed options of either attribute.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    cores: Option<usize>,
    entries: Option<u32>,
    /// Idle time of the SQ polling thread, in milliseconds.
    sqpoll_ms: Option<u64>,
    pin: Option<bool>,
    /// SIGINT/SIGTERM start a graceful shutdown.
    signals: Option<bool>,
    /// The shutdown's grace period, in milliseconds.
    grace_ms: Option<u64>,
}

const KNOWN: &str = "cores, entries, sqpoll, pin, signals, grace";
/// The kernel's own default idle time for the SQ polling thread.
const SQPOLL_DEFAULT_MS: u64 = 1000;

fn parse_options(args: TokenStream2) -> syn::Result<Options> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut opts = Options::default();
    for meta in metas {
        let name = meta
            .path()
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        let seen = match name.as_str() {
            "cores" => opts.cores.is_some(),
            "entries" => opts.entries.is_some(),
            "sqpoll" => opts.sqpoll_ms.is_some(),
            "pin" => opts.pin.is_some(),
            "signals" => opts.signals.is_some(),
            "grace" => opts.grace_ms.is_some(),
            _ => {
                return Err(syn::Error::new(
                    meta.path().span(),
                    format!(
                        "unknown option `{}`; expected one of: {KNOWN}",
                        quote!(#meta)
                            .to_string()
                            .split(['=', ' '])
                            .next()
                            .unwrap_or("")
                    ),
                ));
            }
        };
        if seen {
            return Err(syn::Error::new(
                meta.span(),
                format!("option `{name}` given twice"),
            ));
        }
        match (name.as_str(), &meta) {
            ("sqpoll", Meta::Path(_)) => opts.sqpoll_ms = Some(SQPOLL_DEFAULT_MS),
            ("sqpoll", Meta::NameValue(nv)) => opts.sqpoll_ms = Some(int(&nv.value, "sqpoll")?),
            ("cores", Meta::NameValue(nv)) => {
                let n: usize = int(&nv.value, "cores")?;
                if n == 0 {
                    return Err(syn::Error::new(
                        nv.value.span(),
                        "`cores` must be at least 1",
                    ));
                }
                opts.cores = Some(n);
            }
            ("entries", Meta::NameValue(nv)) => opts.entries = Some(int(&nv.value, "entries")?),
            ("pin", Meta::NameValue(nv)) => opts.pin = Some(boolean(&nv.value, "pin")?),
            ("signals", Meta::Path(_)) => opts.signals = Some(true),
            ("signals", Meta::NameValue(nv)) => opts.signals = Some(boolean(&nv.value, "signals")?),
            ("grace", Meta::NameValue(nv)) => opts.grace_ms = Some(int(&nv.value, "grace")?),
            _ => {
                let form = match name.as_str() {
                    "pin" => "`pin = true` or `pin = false`",
                    "signals" => "`signals` or `signals = BOOL`",
                    "grace" => "`grace = MILLISECONDS`",
                    "sqpoll" => "`sqpoll` or `sqpoll = MILLISECONDS`",
                    _ => "`name = INTEGER`",
                };
                return Err(syn::Error::new(
                    meta.span(),
                    format!("option `{name}` is written {form}"),
                ));
            }
        }
    }
    for (set, name) in [
        (opts.signals.is_some(), "signals"),
        (opts.grace_ms.is_some(), "grace"),
    ] {
        if set && opts.cores.is_none() {
            return Err(syn::Error::new(
                Span::call_site(),
                format!(
                    "`{name}` needs `cores = N`: graceful shutdown is a feature of Runtime::run_on_every_core"
                ),
            ));
        }
    }
    if let (Some(_), None) = (opts.pin, opts.cores) {
        return Err(syn::Error::new(
            Span::call_site(),
            "`pin` needs `cores = N`: a single-core runtime runs on the calling thread, unpinned",
        ));
    }
    Ok(opts)
}

fn int<T: std::str::FromStr>(expr: &Expr, name: &str) -> syn::Result<T>
where
    T::Err: std::fmt::Display,
{
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse(),
        _ => Err(syn::Error::new(
            expr.span(),
            format!("`{name}` takes an integer literal"),
        )),
    }
}

fn boolean(expr: &Expr, name: &str) -> syn::Result<bool> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        _ => Err(syn::Error::new(
            expr.span(),
            format!("`{name}` takes `true` or `false`"),
        )),
    }
}

fn expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let opts = parse_options(args)?;
    let mut func: ItemFn = syn::parse2(item)?;
    let sig = &func.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "the `async` keyword is missing from the function declaration",
        ));
    }
    if !sig.inputs.is_empty() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            "the function must take no arguments",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "the function cannot be generic",
        ));
    }
    if kind == Kind::Main && sig.ident != "main" {
        return Err(syn::Error::new(
            sig.ident.span(),
            "#[percore::main] goes on `async fn main`; use #[percore::test] for tests",
        ));
    }
    if kind == Kind::Test
        && let Some(attr) = func.attrs.iter().find(|a| a.path().is_ident("test"))
    {
        return Err(syn::Error::new(
            attr.span(),
            "#[percore::test] already makes this a test: remove #[test]",
        ));
    }

    let builder = builder_tokens(&opts);
    let body = &func.block;
    let ret = match &sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    let span = body.span();
    let run = match opts.cores {
        None => quote_spanned! {span=>
            let __percore_body = async move #body;
            match #builder.build() {
                ::core::result::Result::Ok(rt) => rt.block_on(__percore_body),
                ::core::result::Result::Err(err) => {
                    ::core::panic!("percore: cannot start the runtime: {}", err)
                }
            }
        },
        Some(_) => quote_spanned! {span=>
            let __percore_rt = match #builder.build() {
                ::core::result::Result::Ok(rt) => rt,
                ::core::result::Result::Err(err) => {
                    ::core::panic!("percore: cannot start the runtime: {}", err)
                }
            };
            let __percore_out = __percore_rt.run_on_every_core(|_core: usize| async move #body);
            ::percore::__private::merge_core_outputs::<#ret>(__percore_out)
        },
    };
    func.sig.asyncness = None;
    let attrs = &func.attrs;
    let vis = &func.vis;
    let sig = &func.sig;
    let test_attr = match kind {
        Kind::Test => quote!(#[::core::prelude::v1::test]),
        Kind::Main => quote!(),
    };
    Ok(quote! {
        #test_attr
        #(#attrs)*
        #vis #sig {
            #run
        }
    })
}

fn builder_tokens(opts: &Options) -> TokenStream2 {
    let mut b = quote!(::percore::Runtime::builder());
    if let Some(n) = opts.cores {
        b = quote!(#b.cores(#n));
    }
    if let Some(n) = opts.entries {
        b = quote!(#b.entries(#n));
    }
    if let Some(ms) = opts.sqpoll_ms {
        b = quote!(#b.sqpoll(::core::option::Option::Some(
            ::std::time::Duration::from_millis(#ms)
        )));
    }
    if let Some(pin) = opts.pin {
        b = quote!(#b.pin(#pin));
    }
    if let Some(on) = opts.signals {
        b = quote!(#b.shutdown_on_signals(#on));
    }
    if let Some(ms) = opts.grace_ms {
        b = quote!(#b.shutdown_grace(::std::time::Duration::from_millis(#ms)));
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> syn::Result<Options> {
        parse_options(s.parse().unwrap())
    }

    fn error(s: &str) -> String {
        parse(s).unwrap_err().to_string()
    }

    #[::core::prelude::v1::test]
    fn no_options() {
        assert_eq!(parse("").unwrap(), Options::default());
    }

    #[::core::prelude::v1::test]
    fn every_option() {
        let o = parse("cores = 4, entries = 256, sqpoll = 20, pin = true, signals, grace = 50")
            .unwrap();
        assert_eq!(
            o,
            Options {
                cores: Some(4),
                entries: Some(256),
                sqpoll_ms: Some(20),
                pin: Some(true),
                signals: Some(true),
                grace_ms: Some(50),
            }
        );
        assert_eq!(
            parse("cores = 1, signals = false").unwrap().signals,
            Some(false)
        );
        assert_eq!(parse("sqpoll").unwrap().sqpoll_ms, Some(SQPOLL_DEFAULT_MS));
        assert_eq!(parse("cores = 2,").unwrap().cores, Some(2));
    }

    #[::core::prelude::v1::test]
    fn bad_options_say_why() {
        assert_eq!(
            error("threads = 2"),
            "unknown option `threads`; expected one of: cores, entries, sqpoll, pin, signals, grace"
        );
        assert_eq!(error("cores = 0"), "`cores` must be at least 1");
        assert_eq!(error("cores = \"2\""), "`cores` takes an integer literal");
        assert_eq!(error("cores"), "option `cores` is written `name = INTEGER`");
        assert_eq!(error("pin = 1, cores = 2"), "`pin` takes `true` or `false`");
        assert_eq!(error("cores = 1, cores = 2"), "option `cores` given twice");
        assert!(error("pin = true").starts_with("`pin` needs `cores = N`"));
        assert!(error("signals").starts_with("`signals` needs `cores = N`"));
        assert!(error("grace = 10").starts_with("`grace` needs `cores = N`"));
        assert_eq!(
            error("cores = 1, grace"),
            "option `grace` is written `grace = MILLISECONDS`"
        );
        assert!(error("sqpoll(3)").starts_with("option `sqpoll` is written"));
        assert!(error("entries = 5000000000").contains("number too large"));
    }

    #[::core::prelude::v1::test]
    fn bad_functions_say_why() {
        let err = |item: &str, kind| {
            expand(kind, TokenStream2::new(), item.parse().unwrap())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("fn main() {}", Kind::Main),
            "the `async` keyword is missing from the function declaration"
        );
        assert_eq!(
            err("async fn main(x: u32) {}", Kind::Main),
            "the function must take no arguments"
        );
        assert_eq!(
            err("async fn t<T>() {}", Kind::Test),
            "the function cannot be generic"
        );
        assert!(err("async fn start() {}", Kind::Main).starts_with("#[percore::main] goes on"));
        assert!(err("#[test] async fn t() {}", Kind::Test).contains("remove #[test]"));
    }

    #[::core::prelude::v1::test]
    fn test_expansion_keeps_attributes_and_return_type() {
        let out = expand(
            Kind::Test,
            quote!(entries = 64),
            quote!(
                #[ignore]
                async fn t() -> std::io::Result<()> {
                    Ok(())
                }
            ),
        )
        .unwrap()
        .to_string();
        assert!(
            out.starts_with("# [:: core :: prelude :: v1 :: test] # [ignore] fn t ()"),
            "{out}"
        );
        assert!(out.contains("-> std :: io :: Result < () >"), "{out}");
        assert!(out.contains(". entries (64u32)"), "{out}");
        let server = expand(
            Kind::Main,
            quote!(cores = 2, signals, grace = 250),
            quote!(
                async fn main() {}
            ),
        )
        .unwrap()
        .to_string();
        assert!(server.contains(". cores (2usize)"), "{server}");
        assert!(server.contains(". shutdown_on_signals (true)"), "{server}");
        assert!(server.contains("from_millis (250u64)"), "{server}");
        assert!(!out.contains("async fn"), "{out}");
    }
}
