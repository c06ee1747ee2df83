package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func printUsage(w io.Writer) {
	fmt.Fprintf(w, `Usage: %s [OPTION]...
A chat room server: each client sends the shared 128-byte key, then lines;
every line is appended to the chat log and sent to every client.

  --port N              TCP port to listen on (default 7000; 0 = any)
  --key-file PATH       the shared key: 128 printable ASCII characters, mode
                        0600 or stricter (default /etc/papaya/chat.key)
  --log PATH            the chat log, created if missing
                        (default /var/lib/papaya/chat.log)
  --history N           log lines sent to a client on connecting (default 7)
  --max-clients N       clients at once; more are refused (default 512)
  --auth-timeout SECS   time a client has to send the key (default 1)
  --user NAME           user to run as when started as root (default papaya)
  --ipv6                listen on [::] (IPv6 only) instead of 0.0.0.0
  --config PATH         read KEY=value settings; the command line wins
                        (keys: PORT KEY_FILE LOG HISTORY MAX_CLIENTS
                        AUTH_TIMEOUT USER)
  --foreground          stay in the foreground (the default)
  --daemon              run in the background once listening
  --pid-file PATH       write the server's process ID to PATH
  -h, --help            show this help and exit
`, progName)
}

// The options that take a value but are not settings of the config file.
const (
	optConfig = numSettings + iota
	optPidFile
	numValueOptions
)

func optionName(opt int) string {
	switch opt {
	case optConfig:
		return "--config"
	case optPidFile:
		return "--pid-file"
	}
	return optionNames[opt]
}

func valueOption(name string) int {
	for j := 0; j < numValueOptions; j++ {
		if optionName(j) == name {
			return j
		}
	}
	return -1
}

func (st *settings) setValue(opt int, value string) {
	name := optionName(opt)
	if opt == optConfig || opt == optPidFile {
		if value == "" {
			usageErr("invalid value '' for %s: expected a path", name)
		}
		if opt == optConfig {
			st.configPath = value
		} else {
			st.pidFile = value
		}
		return
	}
	if expected := st.applySetting(opt, value); expected != "" {
		usageErr("invalid value '%s' for %s: expected %s", value, name, expected)
	}
	st.fromCommandLine[opt] = true
}

// parseCommandLine parses the arguments (without the program name) exactly
// as the C server does: long options only, "--name VALUE" or "--name=VALUE",
// the last of a repeated option wins. Bad options print a message and the
// usage text and exit 2; -h/--help prints the usage text and exits 0.
func (st *settings) parseCommandLine(args []string) {
	for j := 0; j < len(args); j++ {
		arg := args[j]
		if arg == "-h" || arg == "--help" {
			printUsage(os.Stdout)
			os.Exit(0)
		}
		if arg == "--" {
			if j+1 < len(args) {
				usageErr("unexpected argument '%s'", args[j+1])
			}
			break
		}
		if !strings.HasPrefix(arg, "-") {
			usageErr("unexpected argument '%s'", arg)
		}

		name, value, hasValue := strings.Cut(arg, "=")
		switch name {
		case "--ipv6", "--daemon", "--foreground":
			if hasValue {
				usageErr("option '%s' takes no value", name)
			}
			if name == "--ipv6" {
				st.ipv6 = true
			} else {
				st.daemon = name == "--daemon"
			}
			continue
		}

		opt := valueOption(name)
		if opt == -1 {
			usageErr("unknown option '%s'", name)
		}
		if !hasValue {
			if j+1 >= len(args) {
				usageErr("option '%s' requires a value", arg)
			}
			j++
			value = args[j]
		}
		st.setValue(opt, value)
	}
}
