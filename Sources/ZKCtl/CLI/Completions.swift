
/// Shell completion scripts, generated from the command table. The static part (commands,
/// subcommands, options, choices) is written into the script; live values (znode paths, config
/// keys, service names, lock names) come from the hidden `zkctl __complete` command at
/// completion time (`LiveCompletion`, which Tab in `zkctl shell` uses too).
public enum Completions {
    /// Every command path with its spec: "" for the root, "config set", ...
    static func paths(_ root: CommandSpec) -> [(String, CommandSpec)] {
        var out: [(String, CommandSpec)] = []
        func walk(_ spec: CommandSpec, _ path: String) {
            out.append((path, spec))
            for s in spec.subcommands where !s.hidden { walk(s, path.isEmpty ? s.name : "\(path) \(s.name)") }
        }
        walk(root, "")
        return out
    }

    /// The completion kind of an option's value, as the scripts spell it.
    static func kind(_ o: OptionSpec) -> String {
        switch o.type {
        case .choice(let c): return "choice:" + c.joined(separator: " ")
        default: return kindName(o.completion)
        }
    }

    static func kind(_ a: ArgumentSpec) -> String {
        switch a.type {
        case .choice(let c): return "choice:" + c.joined(separator: " ")
        default: return kindName(completion(a))
        }
    }

    /// What an argument's value completes to (a znode path argument completes to paths).
    static func completion(_ a: ArgumentSpec) -> CompletionKind {
        a.completion == .none && a.type == .znodePath ? .znodePath : a.completion
    }

    static func kindName(_ k: CompletionKind) -> String {
        switch k {
        case .none: return "none"
        case .znodePath: return "znode"
        case .configKey: return "config-key"
        case .serviceName: return "service"
        case .lockName: return "lock"
        case .file: return "file"
        case .choice: return "none"
        case .duration: return "duration"
        case .command: return "command"
        }
    }

    /// The options whose values say where the server is; completion passes them on to `__complete`.
    static let connectionOptions = ["server", "config", "timeout", "config-root", "services-root", "locks-root", "auth-file"]

    static func optionWords(_ o: OptionSpec) -> [String] {
        ["--\(o.long)"] + (o.short.map { ["-\($0)"] } ?? [])
    }

    /// A word for the completion scripts, quoted as `config export --format env` quotes values.
    static func quote(_ s: String) -> String { ConfigSupport.shellQuoted(s) }

    // MARK: bash and zsh share the walking logic; each has its own glue.

    /// Case tables as shell functions (bash and zsh accept the same syntax).
    static func shellTables(_ root: CommandSpec) -> String {
        let all = paths(root)
        let globals = root.options.filter { !$0.hidden }
        var s = ""
        s += "_zkctl_subcommands() {\n    case \"$1\" in\n"
        for (path, spec) in all where !spec.subcommands.filter({ !$0.hidden }).isEmpty {
            let names = spec.subcommands.filter { !$0.hidden }.flatMap { [$0.name] + $0.aliases }
            s += "        \(quote(path))) echo \(quote(names.joined(separator: " "))) ;;\n"
        }
        s += "    esac\n}\n\n"
        s += "_zkctl_options() {\n    case \"$1\" in\n"
        let globalWords = globals.flatMap(optionWords) + ["--help"]
        for (path, spec) in all where !path.isEmpty {
            let words = spec.options.filter { !$0.hidden }.flatMap(optionWords) + globalWords
            s += "        \(quote(path))) echo \(quote(words.joined(separator: " "))) ;;\n"
        }
        s += "        *) echo \(quote(globalWords.joined(separator: " "))) ;;\n"
        s += "    esac\n}\n\n"
        s += "# The kind of value an option takes; nothing for a flag.\n"
        s += "_zkctl_optkind() {\n    case \"$1|$2\" in\n"
        for (path, spec) in all where !path.isEmpty {
            for o in spec.options where !o.isFlag && !o.hidden {
                let pattern = optionWords(o).map { quote("\(path)|\($0)") }.joined(separator: "|")
                s += "        \(pattern)) echo \(quote(kind(o))) ;;\n"
            }
        }
        for o in globals where !o.isFlag {
            let pattern = optionWords(o).map { "*\(quote("|\($0)"))" }.joined(separator: "|")
            s += "        \(pattern)) echo \(quote(kind(o))) ;;\n"
        }
        s += "    esac\n}\n\n"
        s += "# The kind of the Nth (0-based) positional argument of a command.\n"
        s += "_zkctl_argkind() {\n    case \"$1|$2\" in\n"
        for (path, spec) in all where !path.isEmpty {
            for (i, a) in spec.arguments.enumerated() {
                s += "        \(quote("\(path)|\(i)"))) echo \(quote(kind(a))) ;;\n"
            }
            if let last = spec.arguments.last, last.variadic {
                s += "        \(quote("\(path)|"))*) echo \(quote(kind(last))) ;;\n"
            }
        }
        s += "    esac\n}\n"
        return s
    }

    /// The word walk: sets path, nargs, pending (an option waiting for its value) and conn (the
    /// connection options typed so far), from words 1..<cword.
    static let shellWalk = """
    _zkctl_walk() {
        local w i subs
        cpath="" nargs=0 pending="" dashdash=0
        conn=()
        for ((i = 1; i < cword; i++)); do
            w=${words[i]}
            if [[ -n $pending ]]; then
                case "$pending" in
                    --server|-s|--config|--timeout|--config-root|--services-root|--locks-root|--auth-file) conn+=("$pending" "$w") ;;
                esac
                pending=""
                continue
            fi
            if ((dashdash)); then nargs=$((nargs + 1)); continue; fi
            case "$w" in
                --) dashdash=1 ;;
                --*=*) ;;
                -*) [[ -n $(_zkctl_optkind "$cpath" "$w") ]] && pending=$w ;;
                *)
                    subs=" $(_zkctl_subcommands "$cpath") "
                    if ((nargs == 0)) && [[ $subs != "  " && $subs == *" $w "* ]]; then
                        cpath=${cpath:+$cpath }$w
                    else
                        nargs=$((nargs + 1))
                    fi
                    ;;
            esac
        done
    }
    """

    // MARK: bash

    public static func bash(_ root: CommandSpec) -> String {
        """
        # bash completion for zkctl. Generated by `zkctl __generate bash` from zkctl's command table;
        # do not edit. Install as share/bash-completion/completions/zkctl, or source it.

        \(shellTables(root))
        \(shellWalk)

        _zkctl_values() {
            local kind=$1 cur=$2
            case "$kind" in
                choice:*) compgen -W "${kind#choice:}" -- "$cur" ;;
                file) compgen -f -- "$cur" ;;
                duration) compgen -W "500ms 1s 5s 10s 30s 1m 5m 1h 24h" -- "$cur" ;;
                znode|config-key|service|lock) "${words[0]}" "${conn[@]}" __complete "$kind" "$cur" 2>/dev/null ;;
                command) compgen -c -- "$cur" ;;
            esac
        }

        _zkctl() {
            local words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
            local cur=${COMP_WORDS[COMP_CWORD]}
            local cpath nargs pending dashdash conn kind subs
            _zkctl_walk
            COMPREPLY=()
            if [[ -n $pending ]]; then
                kind=$(_zkctl_optkind "$cpath" "$pending")
                mapfile -t COMPREPLY < <(_zkctl_values "$kind" "$cur")
            elif ((dashdash)); then
                mapfile -t COMPREPLY < <(compgen -c -- "$cur")
            elif [[ $cur == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$(_zkctl_options "$cpath")" -- "$cur")
            else
                subs=$(_zkctl_subcommands "$cpath")
                if [[ -n $subs ]] && ((nargs == 0)); then
                    mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
                else
                    kind=$(_zkctl_argkind "$cpath" "$nargs")
                    mapfile -t COMPREPLY < <(_zkctl_values "$kind" "$cur")
                fi
            fi
            # A znode path that ends in / is a parent: keep typing after it.
            if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]]; then compopt -o nospace 2>/dev/null; fi
            return 0
        }

        complete -F _zkctl zkctl

        """
    }

    // MARK: zsh

    public static func zsh(_ root: CommandSpec) -> String {
        """
        #compdef zkctl
        # zsh completion for zkctl. Generated by `zkctl __generate zsh` from zkctl's command table;
        # do not edit. Install as share/zsh/site-functions/_zkctl.

        \(shellTables(root))
        \(shellWalk)

        _zkctl_values() {
            local kind=$1 cur=$2
            case "$kind" in
                choice:*) compadd -- ${=${kind#choice:}} ;;
                file) _files ;;
                duration) compadd -- 500ms 1s 5s 10s 30s 1m 5m 1h 24h ;;
                znode|config-key|service|lock)
                    local -a live
                    live=(${(f)"$($prog "${conn[@]}" __complete "$kind" "$cur" 2>/dev/null)"})
                    compadd -S '' -- $live ;;
                command) _command_names ;;
            esac
        }

        _zkctl() {
            local cur=${words[CURRENT]} prog=${words[1]}
            local cpath nargs pending dashdash kind subs
            local -a conn
            # The walk counts words from 0, as bash does.
            () {
                setopt localoptions ksharrays
                local cword=$((CURRENT - 1))
                _zkctl_walk
            }
            if [[ -n $pending ]]; then
                _zkctl_values "$(_zkctl_optkind "$cpath" "$pending")" "$cur"
            elif ((dashdash)); then
                _command_names
            elif [[ $cur == -* ]]; then
                compadd -- ${=$(_zkctl_options "$cpath")}
            else
                subs=$(_zkctl_subcommands "$cpath")
                if [[ -n $subs ]] && ((nargs == 0)); then
                    compadd -- ${=subs}
                else
                    _zkctl_values "$(_zkctl_argkind "$cpath" "$nargs")" "$cur"
                fi
            fi
        }

        if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
            _zkctl "$@"
        else
            compdef _zkctl zkctl
        fi

        """
    }

    // MARK: fish

    public static func fish(_ root: CommandSpec) -> String {
        let all = paths(root)
        var s = """
        # fish completion for zkctl. Generated by `zkctl __generate fish` from zkctl's command table;
        # do not edit. Install as share/fish/vendor_completions.d/zkctl.fish.

        function __zkctl_subcommands
            switch $argv[1]

        """
        for (path, spec) in all where !spec.subcommands.filter({ !$0.hidden }).isEmpty {
            let names = spec.subcommands.filter { !$0.hidden }.flatMap { [$0.name] + $0.aliases }
            s += "                case \(quote(path))\n                    echo \(names.joined(separator: " "))\n"
        }
        s += """
            end
        end

        # Options that take a value (so the word after them is not a command or argument).
        function __zkctl_takes_value
            switch $argv[1]

        """
        let valued = Set(all.flatMap { $0.1.options.filter { !$0.isFlag }.flatMap(optionWords) }).sorted()
        s += "                case \(valued.joined(separator: " "))\n                    return 0\n"
        s += """
            end
            return 1
        end

        # Prints the command path and the number of positional arguments typed so far.
        function __zkctl_state
            set -l tokens (commandline -opc)
            set -e tokens[1]
            set -l path ''
            set -l nargs 0
            set -l skip 0
            for w in $tokens
                if test $skip -eq 1
                    set skip 0
                    continue
                end
                switch $w
                    case '--'
                        echo "$path"
                        echo -1
                        return
                    case '--*=*'
                    case '-*'
                        if __zkctl_takes_value $w
                            set skip 1
                        end
                    case '*'
                        set -l subs (string split ' ' -- (__zkctl_subcommands $path))
                        if test $nargs -eq 0; and contains -- $w $subs
                            set path (string trim -- "$path $w")
                        else
                            set nargs (math $nargs + 1)
                        end
                end
            end
            echo "$path"
            echo $nargs
        end

        function __zkctl_at
            set -l state (__zkctl_state)
            test "$state[1]" = "$argv[1]"
        end

        function __zkctl_arg
            set -l state (__zkctl_state)
            test "$state[1]" = "$argv[1]"; and test "$state[2]" = "$argv[2]"
        end

        function __zkctl_arg_from
            set -l state (__zkctl_state)
            test "$state[1]" = "$argv[1]"; and test "$state[2]" -ge "$argv[2]"
        end

        # Live values from the server; nothing (never an error) when it cannot be reached.
        function __zkctl_live
            set -l tokens (commandline -opc)
            set -l conn
            set -l i 2
            while test $i -le (count $tokens)
                switch $tokens[$i]
                    case --server -s --config --timeout --config-root --services-root --locks-root --auth-file
                        set -l j (math $i + 1)
                        if test $j -le (count $tokens)
                            set conn $conn $tokens[$i] $tokens[$j]
                        end
                end
                set i (math $i + 1)
            end
            $tokens[1] $conn __complete $argv[1] (commandline -ct) 2>/dev/null
        end

        complete -c zkctl -f

        """
        func valueArgs(_ kind: String) -> String {
            if kind.hasPrefix("choice:") { return "-x -a \(quote(String(kind.dropFirst(7))))" }
            switch kind {
            case "file": return "-r -F"
            case "duration": return "-x -a '500ms 1s 5s 10s 30s 1m 5m 1h 24h'"
            case "znode", "config-key", "service", "lock": return "-x -a \(quote("(__zkctl_live \(kind))"))"
            default: return "-x"
            }
        }
        for o in root.options where !o.hidden {
            var line = "complete -c zkctl -l \(o.long)"
            if let sh = o.short { line += " -s \(sh)" }
            if !o.isFlag { line += " " + valueArgs(kind(o)) }
            s += line + " -d \(quote(o.help))\n"
        }
        for (path, spec) in all {
            for sub in spec.subcommands where !sub.hidden {
                s += "complete -c zkctl -n \(quote("__zkctl_at '\(path)'")) -a \(sub.name) -d \(quote(sub.summary))\n"
            }
            guard !path.isEmpty else { continue }
            for o in spec.options where !o.hidden {
                var line = "complete -c zkctl -n \(quote("__zkctl_at '\(path)'")) -l \(o.long)"
                if let sh = o.short { line += " -s \(sh)" }
                if !o.isFlag { line += " " + valueArgs(kind(o)) }
                s += line + " -d \(quote(o.help))\n"
            }
            for (i, a) in spec.arguments.enumerated() {
                let k = kind(a)
                guard k != "none" else { continue }
                let condition = a.variadic ? "__zkctl_arg_from '\(path)' \(i)" : "__zkctl_arg '\(path)' \(i)"
                s += "complete -c zkctl -n \(quote(condition)) " + (k == "file" ? "-F" : valueArgs(k)) + "\n"
            }
        }
        return s
    }
}
