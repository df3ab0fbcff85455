//! `netwho completions SHELL`: the completion script, generated from the
//! same clap definitions as the parser (so it never drifts), plus what clap
//! cannot know: the filter fields, offered after `-f` and among the
//! trailing filter words.

use clap_complete::Shell;
use std::io::Write;

/// The filter fields, space-separated.
fn fields() -> String {
    netwho_query::fields::FIELDS
        .iter()
        .map(|f| f.0)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The report names, space-separated.
fn reports() -> String {
    netwho_report::ReportKind::ALL
        .map(netwho_report::ReportKind::name)
        .join(" ")
}

/// Commands whose trailing words are a filter (and the default command's).
const FILTERING: &str = "top log record report daemon export";

/// The script for `shell`: clap's, plus the filter fields after `-f` and
/// among the trailing filter words (bash, zsh, fish; other shells get
/// clap's script as it is).
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut crate::args::command(), "netwho", &mut out);
    let fields = fields();
    let extra = match shell {
        Shell::Bash => format!(
            r#"
# netwho: filter fields after -f/--filter and among the trailing filter words
_netwho_with_fields() {{
    _netwho "$@"
    local cur="$2" prev="$3" w sub=""
    for w in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case " {FILTERING} completions doctor collect help " in *" $w "*) sub="$w"; break;; esac
    done
    case " $sub " in " completions "|" doctor "|" collect "|" help ") return 0;; esac
    [[ "$cur" == -* ]] && return 0
    if [[ "$prev" == "-f" || "$prev" == "--filter" || ${{#COMPREPLY[@]}} -eq 0 ]]; then
        COMPREPLY=( $(compgen -W "{fields}" -- "$cur") )
    fi
    return 0
}}
complete -F _netwho_with_fields -o bashdefault -o default netwho
"#
        ),
        Shell::Zsh => {
            let text = String::from_utf8_lossy(&out).into_owned();
            // the -f value, and the trailing filter words
            let text: String = text
                .replace(":EXPR:_default'", ":EXPR:_netwho_filter'")
                .split_inclusive('\n')
                .map(|l| {
                    if l.starts_with("'*::expr -- ") {
                        l.replacen(":_default'", ":_netwho_filter'", 1)
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            let def = format!(
                "(( $+functions[_netwho_filter] )) ||\n_netwho_filter() {{\n    local -a fields\n    \
                 fields=({fields})\n    _describe -t fields 'filter field' fields\n}}\n\n"
            );
            let at = text
                .rfind("if [ \"$funcstack[1]\" = \"_netwho\" ]")
                .unwrap_or(text.len());
            let mut t = text;
            t.insert_str(at, &def);
            return t.into_bytes();
        }
        Shell::Fish => format!(
            "\n# netwho: filter fields after -f/--filter and among the trailing filter words\n\
             complete -c netwho -n \"__fish_seen_subcommand_from {FILTERING}; or __fish_netwho_needs_command\" -s f -l filter -x -a \"{fields}\"\n\
             complete -c netwho -n \"__fish_seen_subcommand_from {FILTERING}\" -a \"{fields}\"\n\
             complete -c netwho -n \"__fish_seen_subcommand_from report; and not __fish_seen_subcommand_from {reports}\" -f -a \"{reports}\"\n",
            reports = reports()
        ),
        _ => String::new(),
    };
    out.extend_from_slice(extra.as_bytes());
    out
}

/// Print the script for `shell`.
pub fn print(shell: Shell) -> std::io::Result<()> {
    let s = script(shell);
    let mut o = std::io::stdout().lock();
    o.write_all(&s)?;
    o.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zsh_offers_the_filter_fields_where_clap_offers_anything() {
        let z = String::from_utf8(script(Shell::Zsh)).unwrap();
        // if clap_complete changes its output, this fails rather than
        // quietly losing the fields
        assert!(z.matches(":EXPR:_netwho_filter'").count() >= 12, "{z}");
        let words = z.lines().filter(|l| l.starts_with("'*::expr -- "));
        assert!(words.clone().count() >= 6);
        assert!(words.clone().all(|l| l.contains(":_netwho_filter'")));
        assert!(z.contains("fields=(proc.name "));
        let def = z.find("_netwho_filter() {").unwrap();
        assert!(def < z.rfind("compdef _netwho netwho").unwrap());
    }

    #[test]
    fn every_script_names_every_visible_command() {
        for sh in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let s = String::from_utf8(script(sh)).unwrap();
            for c in crate::args::command()
                .get_subcommands()
                .filter(|c| !c.is_hide_set())
            {
                assert!(s.contains(c.get_name()), "{sh}: {}", c.get_name());
            }
            assert!(s.contains("top-procs"), "{sh}: report names");
            assert!(s.contains("fd.rport"), "{sh}: filter fields");
        }
    }
}
