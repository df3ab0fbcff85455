//! `netwho man DIR`: the manual pages. `netwho(1)` and one page per
//! command come from the clap definitions (so no flag is ever missing from
//! its page); `netwho.toml(5)` and `netwho-filter(7)` come from the README's
//! reference sections and the commented default configuration, converted
//! from Markdown to roff here.

use crate::failure::{Failure, runtime};
use anyhow::Context as _;
use std::path::Path;

/// The README, whose reference sections become pages 5 and 7.
const README: &str = include_str!("../../../../README.md");
/// The default configuration file the package installs (every key
/// commented out, with what it does).
pub const DEFAULT_CONFIG: &str = include_str!("../../../../dist/netwho.toml");

/// One page: where it goes below DIR, and its roff text.
pub struct Page {
    /// `man1/netwho-log.1`, ...
    pub path: String,
    /// The page.
    pub roff: String,
}

/// Every page.
pub fn pages() -> Vec<Page> {
    let mut root = crate::args::command();
    root.build();
    let version = root.get_version().unwrap_or_default().to_string();
    let mut out = vec![Page {
        path: "man1/netwho.1".into(),
        roff: clap_page(root.clone(), &version, &see_also_root(&root)),
    }];
    for sub in root.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let name = format!("netwho-{}", sub.get_name());
        let sub = sub.clone().display_name(name.clone());
        out.push(Page {
            path: format!("man1/{name}.1"),
            roff: clap_page(sub, &version, "netwho(1), netwho-filter(7), netwho.toml(5)"),
        });
    }
    out.push(Page {
        path: "man5/netwho.toml.5".into(),
        roff: config_page(&version),
    });
    out.push(Page {
        path: "man7/netwho-filter.7".into(),
        roff: filter_page(&version),
    });
    out
}

fn see_also_root(root: &clap::Command) -> String {
    let mut v: Vec<String> = root
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| format!("netwho-{}(1)", s.get_name()))
        .collect();
    v.push("netwho.toml(5)".into());
    v.push("netwho-filter(7)".into());
    v.join(", ")
}

/// A command's page: clap_mangen's rendering, with both the short and the
/// long text after the options (clap_mangen keeps only one), and SEE ALSO.
fn clap_page(cmd: clap::Command, version: &str, see_also: &str) -> String {
    let after = match (cmd.get_after_help(), cmd.get_after_long_help()) {
        (Some(a), Some(l)) => Some(format!("{a}\n\n{l}")),
        (Some(a), None) => Some(a.to_string()),
        (None, Some(l)) => Some(l.to_string()),
        (None, None) => None,
    };
    let cmd = match after {
        Some(a) => cmd.after_long_help(a),
        None => cmd,
    };
    let man = clap_mangen::Man::new(cmd)
        .source(format!("netwho {version}"))
        .manual("netwho manual");
    let mut buf = Vec::new();
    // rendering into a Vec cannot fail
    let _ = man.render(&mut buf);
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    s.push_str(&format!(".SH \"SEE ALSO\"\n{}\n", escape(see_also)));
    s
}

fn header(name: &str, section: u8, version: &str, what: &str) -> String {
    format!(
        ".TH {} {section} \"\" \"netwho {version}\" \"netwho manual\"\n.SH NAME\n{} \\- {}\n",
        name.to_ascii_uppercase(),
        escape(name),
        escape(what)
    )
}

fn config_page(version: &str) -> String {
    let mut s = header(
        "netwho.toml",
        5,
        version,
        "the configuration file of netwho daemon",
    );
    s.push_str(".SH SYNOPSIS\n/etc/netwho/netwho.toml\n");
    s.push_str(".SH DESCRIPTION\n");
    s.push_str(&markdown(
        "`netwho daemon` reads its configuration from `/etc/netwho/netwho.toml` (or the file \
         given with `--config`). The file is TOML; every key is optional and has the default \
         shown below; unknown keys and bad values are refused with their name, and the daemon \
         does not start. `netwho daemon --print-config` prints the configuration in effect \
         with the defaults filled in. Durations are written like `\"10s\"`, `\"14d\"`; sizes \
         like `\"256MiB\"`.",
    ));
    s.push_str(".SH \"THE DEFAULT FILE\"\n");
    s.push_str(&markdown(&format!(
        "The file the package installs: every key, commented out, with what it does.\n\n\
         ```toml\n{}```\n",
        DEFAULT_CONFIG
    )));
    for (title, heading) in [
        ("THE DAEMON", "### `netwho daemon`"),
        ("FLOW EXPORT", "### `netwho export`"),
        ("THE FLEET", "### The fleet"),
        ("FIRST-SEEN ALERTS", "### First-seen alerts: what is new"),
    ] {
        s.push_str(&format!(".SH \"{title}\"\n"));
        s.push_str(&markdown(section(README, heading)));
    }
    s.push_str(".SH FILES\n/etc/netwho/netwho.toml\n.SH \"SEE ALSO\"\nnetwho\\-daemon(1), netwho(1), netwho\\-filter(7)\n");
    s
}

fn filter_page(version: &str) -> String {
    let mut s = header("netwho-filter", 7, version, "the filter language of netwho");
    s.push_str(".SH SYNOPSIS\nnetwho COMMAND \\-f EXPR\n.br\nnetwho COMMAND [OPTIONS] WORDS...\n");
    s.push_str(".SH DESCRIPTION\n");
    s.push_str(&markdown(section(README, "### Filters")));
    s.push_str(".SH \"FIELDS AND THEIR TYPES\"\n");
    s.push_str(&markdown(&format!(
        "```\n{}```\n",
        netwho_query::fields::help_table()
    )));
    s.push_str(".SH \"SEE ALSO\"\nnetwho(1), netwho\\-log(1), netwho\\-top(1), netwho.toml(5)\n");
    s
}

/// The body of the README section whose heading starts with `heading`, up
/// to the next heading of the same or a higher level (empty if missing:
/// a test checks every one is found).
pub fn section<'a>(md: &'a str, heading: &str) -> &'a str {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut in_code = false;
    let mut start = None;
    let mut pos = 0;
    for line in md.split_inclusive('\n') {
        let here = pos;
        pos += line.len();
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        match start {
            None if line.starts_with(heading) => start = Some(pos),
            Some(s) => {
                let l = line.chars().take_while(|&c| c == '#').count();
                if l > 0 && l <= level && line[l..].starts_with(' ') {
                    return &md[s..here];
                }
            }
            None => {}
        }
    }
    start.map_or("", |s| &md[s..])
}

/// Escape text for roff: backslashes, hyphens (so that options copy as
/// ASCII), and a leading dot or quote (which would start a request).
pub fn escape(text: &str) -> String {
    let mut s = text.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        s.insert_str(0, "\\&");
    }
    s
}

/// Inline Markdown: `code` and **bold** in bold, links as their text.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(['`', '*', '[']) {
        out.push_str(&escape_mid(&rest[..i]));
        let r = &rest[i..];
        if let Some(after) = r.strip_prefix('`')
            && let Some(end) = after.find('`')
        {
            out.push_str(&format!("\\fB{}\\fR", escape_mid(&after[..end])));
            rest = &after[end + 1..];
        } else if let Some(after) = r.strip_prefix("**")
            && let Some(end) = after.find("**")
        {
            out.push_str(&format!("\\fB{}\\fR", inline(&after[..end])));
            rest = &after[end + 2..];
        } else if let Some(after) = r.strip_prefix('[')
            && let Some(end) = after.find("](")
            && let Some(close) = after[end..].find(')')
        {
            out.push_str(&inline(&after[..end]));
            rest = &after[end + close + 1..];
        } else {
            out.push_str(&escape_mid(&r[..1]));
            rest = &r[1..];
        }
    }
    out.push_str(&escape_mid(rest));
    out
}

/// Escape inside a line (a leading dot is handled per line).
fn escape_mid(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// A line of roff text: a leading dot or quote would be a request.
fn text_line(line: &str) -> String {
    if line.starts_with('.') || line.starts_with('\'') {
        format!("\\&{line}\n")
    } else {
        format!("{line}\n")
    }
}

/// Markdown (the README's subset: headings, paragraphs, `* ` lists, fenced
/// code, tables) as roff.
pub fn markdown(md: &str) -> String {
    let mut out = String::new();
    let mut para: Vec<String> = Vec::new();
    let mut bullet = false;
    let flush = |out: &mut String, para: &mut Vec<String>, bullet: &mut bool| {
        if !para.is_empty() {
            out.push_str(if *bullet { ".IP \\(bu 2\n" } else { ".PP\n" });
            out.push_str(&text_line(&inline(&para.join(" "))));
            para.clear();
        }
        *bullet = false;
    };
    let mut lines = md.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("```") {
            flush(&mut out, &mut para, &mut bullet);
            out.push_str(".PP\n.RS 2\n.nf\n");
            for code in lines.by_ref() {
                if code.starts_with("```") {
                    break;
                }
                out.push_str(&text_line(&escape_mid(code)));
            }
            out.push_str(".fi\n.RE\n");
        } else if line.starts_with('|') {
            flush(&mut out, &mut para, &mut bullet);
            let mut rows = vec![line];
            while let Some(next) = lines.peek()
                && next.starts_with('|')
            {
                rows.push(next);
                lines.next();
            }
            out.push_str(&table(&rows));
        } else if line.starts_with('#') {
            flush(&mut out, &mut para, &mut bullet);
            let title = line.trim_start_matches('#').trim();
            out.push_str(&format!(".SS \"{}\"\n", inline(title).replace('"', "'")));
        } else if line.trim().is_empty() {
            flush(&mut out, &mut para, &mut bullet);
        } else if let Some(item) = line.strip_prefix("* ") {
            flush(&mut out, &mut para, &mut bullet);
            bullet = true;
            para.push(item.trim().to_string());
        } else {
            para.push(line.trim().to_string());
        }
    }
    flush(&mut out, &mut para, &mut bullet);
    out
}

/// A Markdown table, as aligned preformatted text (what man shows best on
/// any terminal).
fn table(rows: &[&str]) -> String {
    let raw: Vec<Vec<&str>> = rows
        .iter()
        .filter(|r| !r.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')))
        .map(|r| {
            r.trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect()
        })
        .collect();
    if raw.iter().all(|r| r.len() == 2) {
        // a term and its meaning (the header row names the columns)
        let mut out = String::new();
        for r in raw.iter().skip(1) {
            out.push_str(&format!(
                ".TP
{}
",
                text_line(&inline(r[0])).trim_end()
            ));
            out.push_str(&text_line(&inline(r[1])));
        }
        return out;
    }
    let cells: Vec<Vec<String>> = raw
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| c.replace('`', "").replace("**", ""))
                .collect()
        })
        .collect();
    let cols = cells.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            cells
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
                .min(40)
        })
        .collect();
    let mut out = String::from(".PP\n.nf\n");
    for r in &cells {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                line.push_str(&format!("{c:<w$}  ", w = widths[i]));
            } else {
                line.push_str(c);
            }
        }
        out.push_str(&text_line(&escape_mid(line.trim_end())));
    }
    out.push_str(".fi\n");
    out
}

/// Write every page below `dir` (man1/, man5/, man7/).
pub fn write_all(dir: &Path) -> Result<(), Failure> {
    for p in pages() {
        let path = dir.join(&p.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))
                .map_err(runtime)?;
        }
        std::fs::write(&path, p.roff)
            .with_context(|| format!("writing {}", path.display()))
            .map_err(runtime)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_readme_section_the_pages_use_is_found() {
        for h in [
            "### `netwho daemon`",
            "### `netwho export`",
            "### The fleet",
            "### Filters",
        ] {
            let body = section(README, h);
            assert!(body.len() > 500, "{h}: {} bytes", body.len());
            assert!(!body.contains("\n## "), "{h} runs into the next chapter");
        }
        // a heading inside a code block does not end a section
        let md = "### A\ntext\n```\n# comment\n### not a heading\n```\nmore\n### B\nb\n";
        assert_eq!(
            section(md, "### A"),
            "text\n```\n# comment\n### not a heading\n```\nmore\n"
        );
        assert_eq!(section(md, "### C"), "");
    }

    #[test]
    fn markdown_becomes_roff() {
        let r = markdown(
            "A `--flag` and **bold** [link](x.md).\n\n* item\n  continued\n\n```\n.dot -x\n```\n\n| a | b |\n|---|---|\n| `x` | yy |\n\n| a | b | c |\n|---|---|---|\n| `x` | yy | z |\n",
        );
        assert!(
            r.contains("A \\fB\\-\\-flag\\fR and \\fBbold\\fR link."),
            "{r}"
        );
        assert!(r.contains(".IP \\(bu 2\nitem continued\n"), "{r}");
        assert!(r.contains(".nf\n\\&.dot \\-x\n.fi"), "{r}");
        assert!(r.contains(".TP\n\\fBx\\fR\nyy\n"), "{r}");
        assert!(r.contains("a  b   c\nx  yy  z\n"), "{r}");
        assert!(!r.contains("---"), "{r}");
    }

    /// Every flag of every command, as its page spells it (`\-\-name`).
    #[test]
    fn every_flag_appears_in_its_page() {
        let pages = pages();
        let page = |name: &str| {
            let path = format!("man1/{name}.1");
            pages
                .iter()
                .find(|p| p.path == path)
                .map(|p| p.roff.clone())
                .unwrap_or_else(|| panic!("no page {path}"))
        };
        let mut root = crate::args::command();
        root.build();
        let mut checked = 0;
        let mut cmds: Vec<(String, clap::Command)> = vec![("netwho".into(), root.clone())];
        for sub in root.get_subcommands() {
            if !sub.is_hide_set() && sub.get_name() != "help" {
                cmds.push((format!("netwho-{}", sub.get_name()), sub.clone()));
            }
        }
        assert_eq!(
            cmds.len(),
            1 + 10,
            "root, top log record report daemon export pcap collect doctor completions"
        );
        for (name, cmd) in cmds {
            let roff = page(&name);
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(l) = arg.get_long() {
                    let want = format!("\\-\\-{}", escape_mid(l));
                    assert!(roff.contains(&want), "{name}: --{l} is not in its page");
                    checked += 1;
                }
                if let Some(c) = arg.get_short() {
                    let want = format!("\\-{}", escape_mid(&c.to_string()));
                    assert!(roff.contains(&want), "{name}: -{c} is not in its page");
                }
            }
            for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
                assert!(roff.contains(sub.get_name()), "{name}: {}", sub.get_name());
            }
        }
        assert!(checked > 150, "only {checked} flags checked");
    }

    #[test]
    fn the_configuration_page_has_every_key_and_the_default_file_is_the_defaults() {
        let defaults = crate::config::Config::default();
        let printed = defaults.to_toml();
        let roff = pages()
            .into_iter()
            .find(|p| p.path == "man5/netwho.toml.5")
            .map(|p| p.roff)
            .unwrap_or_default();
        let mut keys = 0;
        for line in printed.lines() {
            if let Some((key, _)) = line.split_once(" = ") {
                let key = key.trim();
                assert!(
                    roff.contains(&escape_mid(key)),
                    "{key} is not in netwho.toml(5)"
                );
                assert!(
                    DEFAULT_CONFIG.contains(&format!("\n#{key} = ")),
                    "{key} is not in dist/netwho.toml"
                );
                keys += 1;
            }
        }
        assert!(keys > 40, "{keys} keys");
        // the file as installed (all commented out) is the defaults; with
        // every key uncommented it still is: the comments tell the truth
        assert_eq!(crate::config::parse(DEFAULT_CONFIG).unwrap(), defaults);
        let uncommented: String = DEFAULT_CONFIG
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase()) => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_ne!(uncommented, DEFAULT_CONFIG);
        assert_eq!(crate::config::parse(&uncommented).unwrap(), defaults);
    }

    #[test]
    fn hostile_text_cannot_inject_roff_requests() {
        assert_eq!(escape(".sh rm -rf"), "\\&.sh rm \\-rf");
        assert_eq!(escape("a\\b"), "a\\eb");
        let r = markdown("'x\n.y");
        assert!(
            r.lines()
                .all(|l| !l.starts_with("'x") && !l.starts_with(".y")),
            "{r}"
        );
    }
}
