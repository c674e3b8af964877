//! The README's "Play both sides" walkthrough, run as written: its shell blocks are read out of
//! README.md and every command runs in order, in a fresh directory, with the `ecny` this build
//! made. The README is the script, so the two cannot drift apart.
//!
//! What the runner does with each line, and nothing more:
//! - `cargo build …` and `export PATH=…` are how a reader gets this `ecny`: skipped.
//! - `ecny serve …` starts in the background on a free port (`--listen 127.0.0.1:0`), and every
//!   `ecny wallet`/`ecny merchant` command is pointed at it with `--server URL`.
//! - `curl … localhost:8080/PATH` is sent to that server; `$(cat FILE)` reads the file.
//! - `--code DIGITS` is a payment code: the one the last `ecny wallet code` showed.
//! - Any other line must be an `ecny` command; it must succeed, unless its comment says
//!   `# refused: CODE`, then it must fail with `[CODE]`.
//! - Ids (`W0000000006`, `M00000002`, `SW00000003`, `T000000000033`) and yuan amounts (`¥78.00`)
//!   in a command's comment must appear in what it printed, so the README shows real output.

#[allow(dead_code)]
#[path = "support/http_client.rs"]
mod http_client;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const SECTION: &str = "## Play both sides";
const SERVE_START_WAIT_MS: u64 = 30_000;

/// One line of a shell block: the words to run and the comment after them.
#[derive(Debug)]
struct Line {
    words: Vec<String>,
    comment: String,
    text: String,
}

/// The section's shell blocks, line by line, in order.
fn walkthrough(readme: &str) -> Vec<Line> {
    let start = readme.find(SECTION).expect("the README has the section");
    let section = &readme[start + SECTION.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut lines = Vec::new();
    let mut in_block = false;
    for text in section.lines() {
        let trimmed = text.trim();
        if trimmed.starts_with("```") {
            in_block = !in_block && trimmed == "```sh";
            continue;
        }
        if !in_block || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (words, comment) = split_words(trimmed);
        lines.push(Line {
            words,
            comment,
            text: trimmed.to_string(),
        });
    }
    lines
}

/// Shell words with single and double quotes, and the comment after an unquoted `#`.
fn split_words(line: &str) -> (Vec<String>, String) {
    let (mut words, mut word, mut quote) = (Vec::new(), None::<String>, None::<char>);
    let mut chars = line.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, '#') if word.is_none() => {
                words.extend(word.take());
                return (words, line[at + 1..].trim().to_string());
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, '$') if line[at..].starts_with("$(") => {
                // `$(…)` stays one word, to be substituted when it runs.
                let end = line[at..].find(')').expect("$( is closed") + at;
                word.get_or_insert_with(String::new)
                    .push_str(&line[at..=end]);
                while chars.peek().is_some_and(|(i, _)| *i <= end) {
                    chars.next();
                }
            }
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quote in: {line}");
    words.extend(word);
    (words, String::new())
}

/// `$(cat FILE)` inside a word, read from `cwd`.
fn substitute(word: &str, cwd: &Path) -> String {
    match word.find("$(cat ") {
        Some(at) => {
            let end = word[at..].find(')').unwrap() + at;
            let file = word[at + 6..end].trim();
            let content = std::fs::read_to_string(cwd.join(file))
                .unwrap_or_else(|e| panic!("$(cat {file}): {e}"));
            format!("{}{}{}", &word[..at], content.trim(), &word[end + 1..])
        }
        None => word.to_string(),
    }
}

/// Ids and yuan amounts a comment promises the output shows.
fn promised(comment: &str) -> Vec<String> {
    let is_id = |word: &str| {
        let digits = |prefix: &str, count: usize| {
            word.strip_prefix(prefix)
                .is_some_and(|d| d.len() == count && d.bytes().all(|b| b.is_ascii_digit()))
        };
        digits("W", 10) || digits("M", 8) || digits("SW", 8) || digits("T", 12)
    };
    let is_yuan =
        |word: &str| word.starts_with('¥') && word.ends_with(|c: char| c.is_ascii_digit());
    comment
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '(' | ')'))
        .map(|word| word.trim_end_matches('.'))
        .filter(|word| is_id(word) || is_yuan(word))
        .map(str::to_string)
        .collect()
}

/// The refusal code a comment announces, `# refused: CODE …`.
fn refusal(comment: &str) -> Option<&str> {
    let rest = comment.strip_prefix("refused: ")?;
    let code = rest
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .next();
    Some(
        code.filter(|c| !c.is_empty())
            .expect("a CODE after refused:"),
    )
}

struct Run {
    cwd: tempfile::TempDir,
    server: Option<(Child, SocketAddr)>,
    payment_code: Option<String>,
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some((mut child, _)) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Run {
    fn serve(&mut self, line: &Line) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecny"))
            .current_dir(self.cwd.path())
            .args(&line.words[1..])
            .args(["--listen", "127.0.0.1:0", "--log", "warn"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (heard, banner) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("ecny serving on http://") {
                    let _ = heard.send(rest.split(' ').next().unwrap_or_default().to_string());
                }
            }
        });
        let addr = banner
            .recv_timeout(Duration::from_millis(SERVE_START_WAIT_MS))
            .unwrap_or_else(|_| panic!("`{}` did not start", line.text));
        self.server = Some((child, addr.parse().unwrap()));
    }

    fn addr(&self, line: &Line) -> SocketAddr {
        self.server
            .as_ref()
            .unwrap_or_else(|| panic!("`{}` needs `ecny serve` first", line.text))
            .1
    }

    /// Runs an `ecny` command; (succeeded, standard output, standard error).
    fn ecny(&mut self, line: &Line) -> (bool, String, String) {
        let mut args: Vec<String> = line.words[1..]
            .iter()
            .map(|word| substitute(word, self.cwd.path()))
            .collect();
        if let Some(at) = args.iter().position(|word| word == "--code") {
            args[at + 1] = self.payment_code.clone().expect(
                "a payment code is shown (`ecny wallet code`) before a scan gun charges it",
            );
        }
        if matches!(
            args.first().map(String::as_str),
            Some("wallet" | "merchant" | "staff")
        ) {
            let url = format!("http://{}", self.addr(line));
            args.splice(1..1, ["--server".to_string(), url]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_ecny"))
            .current_dir(self.cwd.path())
            .args(&args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if let Some(code) = stdout.lines().find_map(|l| l.strip_prefix("payment code ")) {
            self.payment_code = Some(code.replace(' ', ""));
        }
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stdout, stderr)
    }

    /// `curl -H "Authorization: …" localhost:8080/PATH`, sent to the running server.
    fn curl(&self, line: &Line) -> (bool, String, String) {
        let mut headers = Vec::new();
        let mut url = None;
        let mut words = line.words[1..].iter();
        while let Some(word) = words.next() {
            if word == "-H" {
                let header = substitute(words.next().expect("a header after -H"), self.cwd.path());
                let (name, value) = header.split_once(": ").expect("Name: value");
                headers.push((name.to_string(), value.to_string()));
            } else {
                url = Some(word.clone());
            }
        }
        let url = url.expect("curl is given a URL");
        let path = &url[url.find('/').expect("a path in the URL")..];
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let reply = http_client::send(self.addr(line), "GET", path, &header_refs, b"");
        (reply.status == 200, reply.text(), String::new())
    }
}

#[test]
fn the_play_both_sides_walkthrough_runs_as_the_readme_tells_it() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let lines = walkthrough(&readme);
    assert!(lines.len() > 15, "the walkthrough was not found: {lines:?}");
    let mut run = Run {
        cwd: tempfile::tempdir().unwrap(),
        server: None,
        payment_code: None,
    };
    let mut refusals = 0;
    for line in &lines {
        let (ok, stdout, stderr) = match line.words.first().map(String::as_str) {
            Some("cargo") if line.words.get(1).is_some_and(|w| w == "build") => continue,
            Some("export") if line.text.starts_with("export PATH=") => continue,
            Some("ecny") if line.words.get(1).is_some_and(|w| w == "serve") => {
                run.serve(line);
                continue;
            }
            Some("ecny") => run.ecny(line),
            Some("curl") => run.curl(line),
            _ => panic!(
                "the walkthrough runs a command this test does not know: {}",
                line.text
            ),
        };
        match refusal(&line.comment) {
            Some(code) => {
                refusals += 1;
                assert!(
                    !ok,
                    "`{}` was to be refused with {code}:\n{stdout}",
                    line.text
                );
                assert!(
                    stderr.starts_with("error: ") && stderr.contains(&format!(" [{code}]")),
                    "`{}` was to be refused with {code}, said:\n{stderr}",
                    line.text
                );
            }
            None => assert!(ok, "`{}` failed:\n{stdout}{stderr}", line.text),
        }
        for promise in promised(&line.comment) {
            assert!(
                stdout.contains(&promise) || stderr.contains(&promise),
                "`{}` promises {promise} but printed:\n{stdout}{stderr}",
                line.text
            );
        }
        if line.words.first().is_some_and(|w| w == "curl") && line.text.contains("/v1/audit") {
            assert!(
                stdout.contains("\"clean\":true"),
                "the audit after the walkthrough: {stdout}"
            );
        }
    }
    assert!(run.server.is_some(), "the walkthrough starts a server");
    assert!(refusals >= 3, "the walkthrough shows its refusals");
    assert!(run.cwd.path().join("ecny-wallet.json").exists());
}

#[test]
fn the_runner_reads_shell_words_comments_and_promises() {
    let (words, comment) = split_words(
        r#"ecny merchant onboard --name "Pingjiang Snacks" --qr '00 02'   # prints M00000002"#,
    );
    assert_eq!(
        words,
        [
            "ecny",
            "merchant",
            "onboard",
            "--name",
            "Pingjiang Snacks",
            "--qr",
            "00 02"
        ]
    );
    assert_eq!(comment, "prints M00000002");
    let (words, _) = split_words(
        r#"curl -H "Authorization: Bearer $(cat ecny-data/keys/x.token)" localhost:8080/v1/audit"#,
    );
    assert_eq!(
        words[2],
        "Authorization: Bearer $(cat ecny-data/keys/x.token)"
    );
    assert_eq!(
        promised("gross ¥84.60, refunded ¥6.60; e.g. T000000000033 and SW00000003."),
        ["¥84.60", "¥6.60", "T000000000033", "SW00000003"]
    );
    assert_eq!(
        refusal("refused: ORDER_ALREADY_PAID (paid once)"),
        Some("ORDER_ALREADY_PAID")
    );
    assert_eq!(refusal("prints W0000000006"), None);
}
