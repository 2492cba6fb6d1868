//! Unit tests of `cli`.

use super::*;
use clap::CommandFactory;
use std::ffi::OsStr;

#[test]
fn verify_cli() {
    Cli::command().debug_assert();
}

#[test]
fn defaults_translate_to_default_config() {
    let Command::Clean(args) = Cli::parse_from(["newsdedup", "clean", "x.txt"]).command else {
        panic!("clean parses as clean")
    };
    let cfg = args.into_config().unwrap();
    assert_eq!(cfg.input, Input::Path("x.txt".into()));
    assert_eq!(cfg.output, Output::Stdout);
    assert_eq!(cfg.text, TextOptions::default());
    assert_eq!(cfg.rules, Rules::default());
}

#[test]
fn batch_is_raw_bytes_and_needs_an_index() {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(b"day-\xff");
    let args = [OsStr::new("newsdedup"), OsStr::new("clean"), OsStr::new("in"), OsStr::new("--batch"), name];
    assert!(Cli::try_parse_from(args).is_err(), "--batch without --index");
    let cli = Cli::parse_from(args.iter().copied().chain([OsStr::new("--index"), OsStr::new("ix")]));
    let Command::Clean(args) = cli.command else { panic!("clean parses as clean") };
    assert_eq!(args.into_config().unwrap().batch.as_deref(), Some(&b"day-\xff"[..]));
}

#[test]
fn dash_is_stdin_and_flags_map() {
    let cli = Cli::parse_from(["newsdedup", "clean", "-", "--key", "loose", "--quotes", "keep", "--scope", "document"]);
    let Command::Clean(args) = cli.command else { panic!("clean parses as clean") };
    let cfg = args.into_config().unwrap();
    assert_eq!(cfg.input, Input::Stdin);
    assert_eq!(cfg.text.key, KeyMode::Loose);
    assert_eq!(cfg.text.quotes, QuoteMode::Keep);
    assert_eq!(cfg.rules.scope, Scope::Document);
}

#[test]
fn unwrap_is_off_by_default_and_excludes_emit_original() {
    let parse = |args: &[&str]| {
        let mut all = vec!["newsdedup", "clean", "x.txt"];
        all.extend(args);
        Cli::try_parse_from(all).map(|c| match c.command {
            Command::Clean(a) => a.into_config().map(|c| c.emit).ok(),
            _ => None,
        })
    };
    assert_eq!(parse(&[]).ok().flatten(), Some(Emit::Normalized));
    assert_eq!(parse(&["--unwrap"]).ok().flatten(), Some(Emit::Unwrapped));
    assert!(parse(&["--unwrap", "--emit", "original"]).is_err());
}
