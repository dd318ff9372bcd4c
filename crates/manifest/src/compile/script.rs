//! Shell scripts: `commands` turned into a script the way Drone does it
//! (reference §9.1, §9.2), and the host clone script (§8).

use runnerkit_core::drone::Build;

/// `commands` for a POSIX shell in a container: the netrc prelude, `set -e`,
/// then each command echoed as `+ command` before it runs.
pub(crate) fn posix_container(commands: &[String]) -> String {
    let mut body = String::from(
        "\n\
         if [ -n \"$DRONE_NETRC_FILE\" ]; then\n\
         printf '%s\\n' \"$DRONE_NETRC_FILE\" > \"$HOME/.netrc\"\n\
         chmod 600 \"$HOME/.netrc\"\n\
         fi\n\
         unset DRONE_SCRIPT\n\
         unset DRONE_NETRC_MACHINE\n\
         unset DRONE_NETRC_USERNAME\n\
         unset DRONE_NETRC_PASSWORD\n\
         unset DRONE_NETRC_FILE\n\
         set -e\n",
    );
    push_commands(&mut body, commands);
    body
}

/// `commands` for a host process (`type: exec`): `set -e` and the echo
/// layout, no prelude (the host engine writes `.netrc` itself).
pub(crate) fn posix_host(commands: &[String]) -> String {
    let mut body = String::from("set -e\n");
    push_commands(&mut body, commands);
    body
}

fn push_commands(body: &mut String, commands: &[String]) {
    for command in commands {
        body.push('\n');
        body.push_str("echo + ");
        body.push_str(&echo_quote(command));
        body.push('\n');
        body.push_str(command);
        body.push('\n');
    }
}

/// The command as a double-quoted shell string that prints it unexpanded:
/// C-style escapes for `"`, `\` and newlines, `$` as `\$`. Unlike Drone, a
/// backquote is escaped too, so `echo` never runs a command substitution.
pub(crate) fn echo_quote(command: &str) -> String {
    let mut out = String::with_capacity(command.len() + 2);
    out.push('"');
    for c in command.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '$' => out.push_str("\\$"),
            '`' => out.push_str("\\`"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `commands` for PowerShell (Windows containers).
pub(crate) fn powershell(commands: &[String]) -> String {
    let mut body = String::from(
        "\n\
         if ($Env:DRONE_NETRC_FILE) {\n\
         $Env:DRONE_NETRC_FILE | Out-File -Encoding ascii -FilePath \"$Env:USERPROFILE\\_netrc\"\n\
         }\n\
         [Environment]::SetEnvironmentVariable(\"DRONE_NETRC_USERNAME\", $null)\n\
         [Environment]::SetEnvironmentVariable(\"DRONE_NETRC_PASSWORD\", $null)\n\
         [Environment]::SetEnvironmentVariable(\"DRONE_NETRC_FILE\", $null)\n\
         [Environment]::SetEnvironmentVariable(\"DRONE_SCRIPT\", $null)\n\
         $erroractionpreference = \"stop\"\n",
    );
    for command in commands {
        let echoed = command
            .replace('`', "``")
            .replace('$', "`$")
            .replace('"', "`\"");
        body.push('\n');
        body.push_str(&format!("echo \"+ {echoed}\"\n"));
        body.push_str(command);
        body.push_str("\nif ($LastExitCode -gt 0) { exit $LastExitCode }\n");
    }
    body
}

/// Single-quotes `text` for a POSIX shell.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The clone of a host (`type: exec`) pipeline: `git init`, the remote, then
/// a fetch and checkout for a branch, a tag or a pull request.
pub(crate) fn host_clone(build: &Build, remote: &str, depth: i64) -> String {
    let depth = if depth > 0 {
        format!(" --depth={depth}")
    } else {
        String::new()
    };
    let mut lines = vec![
        "set -e".to_owned(),
        "if [ -n \"$DRONE_NETRC_FILE\" ]; then".to_owned(),
        "printf '%s\\n' \"$DRONE_NETRC_FILE\" > \"$HOME/.netrc\"".to_owned(),
        "chmod 600 \"$HOME/.netrc\"".to_owned(),
        "fi".to_owned(),
        "git init".to_owned(),
        format!("git remote add origin {}", sh_quote(remote)),
    ];
    let r = &build.git_ref;
    let is_pr = ["refs/pull/", "refs/pull-requests/", "refs/merge-requests/"]
        .iter()
        .any(|p| r.starts_with(p));
    if r.starts_with("refs/tags/") {
        lines.push(format!(
            "git fetch{depth} origin {}",
            sh_quote(&format!("+{r}:"))
        ));
        lines.push("git checkout -qf FETCH_HEAD".to_owned());
    } else if is_pr {
        let target = &build.target;
        lines.push(format!(
            "git fetch{depth} origin {}",
            sh_quote(&format!("+refs/heads/{target}:"))
        ));
        lines.push(format!("git checkout {}", sh_quote(target)));
        lines.push(format!("git fetch origin {}", sh_quote(&format!("{r}:"))));
        lines.push(format!("git merge {}", sh_quote(&build.after)));
    } else {
        let branch = r.strip_prefix("refs/heads/").unwrap_or(&build.target);
        lines.push(format!(
            "git fetch{depth} origin {}",
            sh_quote(&format!("+refs/heads/{branch}:"))
        ));
        lines.push(format!(
            "git checkout {} -b {}",
            sh_quote(&build.after),
            sh_quote(branch)
        ));
    }
    let mut body = lines.join("\n");
    body.push('\n');
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_script_has_prelude_set_e_and_echoed_commands() {
        let body = posix_container(&["make test".into(), "echo \"$HOME\" `x` \\".into()]);
        assert!(body.starts_with("\nif [ -n \"$DRONE_NETRC_FILE\" ]"));
        assert!(body.contains("unset DRONE_SCRIPT\n"));
        assert!(body.contains("unset DRONE_NETRC_PASSWORD\n"));
        let tail = body.split("set -e\n").nth(1).unwrap();
        assert_eq!(
            tail,
            "\necho + \"make test\"\nmake test\n\necho + \"echo \\\"\\$HOME\\\" \\`x\\` \\\\\"\necho \"$HOME\" `x` \\\n"
        );
    }

    #[test]
    fn host_script_has_no_prelude() {
        assert_eq!(posix_host(&["ls".into()]), "set -e\n\necho + \"ls\"\nls\n");
    }

    #[test]
    fn echo_quote_escapes_newlines() {
        assert_eq!(echo_quote("a\nb"), "\"a\\nb\"");
    }

    #[test]
    fn echoed_commands_print_themselves_in_a_real_shell() {
        let tricky = "echo \"$HOME\" '$x' `whoami` \\ done";
        let script = format!("echo + {}", echo_quote(tricky));
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("+ {tricky}\n")
        );
    }

    #[test]
    fn powershell_script_checks_exit_codes() {
        let body = powershell(&["go test $x".into()]);
        assert!(body.contains("echo \"+ go test `$x\"\ngo test $x\nif ($LastExitCode -gt 0)"));
        assert!(body.contains("$erroractionpreference = \"stop\""));
    }

    #[test]
    fn host_clone_for_branch_tag_and_pull_request() {
        let mut build = Build {
            git_ref: "refs/heads/main".into(),
            target: "main".into(),
            after: "abc".into(),
            ..Build::default()
        };
        let branch = host_clone(&build, "https://h/o/r.git", 50);
        assert!(branch.contains("git remote add origin 'https://h/o/r.git'\n"));
        assert!(branch.contains("git fetch --depth=50 origin '+refs/heads/main:'\n"));
        assert!(branch.contains("git checkout 'abc' -b 'main'\n"));
        build.git_ref = "refs/tags/v1".into();
        let tag = host_clone(&build, "u", 0);
        assert!(tag.contains("git fetch origin '+refs/tags/v1:'\ngit checkout -qf FETCH_HEAD\n"));
        build.git_ref = "refs/pull/7/head".into();
        let pr = host_clone(&build, "u", 0);
        assert!(pr.contains(
            "git checkout 'main'\ngit fetch origin 'refs/pull/7/head:'\ngit merge 'abc'\n"
        ));
        build.target = "it's".into();
        assert!(host_clone(&build, "u", 0).contains(r"'it'\''s'"));
    }
}
