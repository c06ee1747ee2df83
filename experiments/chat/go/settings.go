package main

import (
	"strings"
	"syscall"
)

// Protocol constants, defaults and limits: the same as the C server's
// (../c/settings.h).
const (
	keyLength = 128  // bytes of the shared key
	maxLine   = 4096 // longest line, newline included

	defaultPort          = 7000
	defaultKeyFile       = "/etc/papaya/chat.key"
	defaultLog           = "/var/lib/papaya/chat.log"
	defaultHistory       = 7
	defaultMaxClients    = 512
	defaultAuthTimeoutMs = 1000
	defaultUser          = "papaya"

	maxHistory       = 1000000
	maxMaxClients    = 100000
	maxAuthTimeoutMs = 3600000
)

// The settings that both the command line and the config file can set, in
// the order of the usage text.
const (
	setPort = iota
	setKeyFile
	setLog
	setHistory
	setMaxClients
	setAuthTimeout
	setUser
	numSettings
)

var (
	optionNames = [numSettings]string{"--port", "--key-file", "--log",
		"--history", "--max-clients", "--auth-timeout", "--user"}
	keyNames = [numSettings]string{"PORT", "KEY_FILE", "LOG", "HISTORY",
		"MAX_CLIENTS", "AUTH_TIMEOUT", "USER"}
)

type settings struct {
	port            int
	keyFile         string
	logPath         string
	history         int
	maxClients      int
	authTimeoutMs   int
	user            string // "": not given
	configPath      string // "": no config file
	pidFile         string // "": no pid file
	daemon          bool
	ipv6            bool
	fromCommandLine [numSettings]bool // the command line wins
}

func defaultSettings() settings {
	return settings{
		port:          defaultPort,
		keyFile:       defaultKeyFile,
		logPath:       defaultLog,
		history:       defaultHistory,
		maxClients:    defaultMaxClients,
		authTimeoutMs: defaultAuthTimeoutMs,
	}
}

// parseDigits parses one to maxDigits decimal digits, nothing else (no sign,
// no spaces), as the C server does.
func parseDigits(s string, maxDigits int) (int, bool) {
	if s == "" || len(s) > maxDigits {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	return v, true
}

func parseInteger(s string, min, max int) (int, bool) {
	v, ok := parseDigits(s, 9)
	if !ok || v < min || v > max {
		return 0, false
	}
	return v, true
}

// parseSeconds parses "S" or "S.F" (one to three decimals) into milliseconds
// within [1, maxAuthTimeoutMs].
func parseSeconds(s string) (int, bool) {
	whole, frac, hasDot := strings.Cut(s, ".")
	secs, ok := parseDigits(whole, 9)
	if !ok {
		return 0, false
	}
	ms := 0
	if hasDot {
		if ms, ok = parseDigits(frac, 3); !ok {
			return 0, false
		}
		for j := len(frac); j < 3; j++ {
			ms *= 10
		}
	}
	if secs > maxAuthTimeoutMs/1000 {
		return 0, false
	}
	ms += secs * 1000
	if ms < 1 || ms > maxAuthTimeoutMs {
		return 0, false
	}
	return ms, true
}

// applySetting sets one setting from its text. It returns "" on success, or
// what was expected ("an integer from 0 to 65535").
func (st *settings) applySetting(which int, value string) string {
	var ok bool
	switch which {
	case setPort:
		if st.port, ok = parseInteger(value, 0, 65535); !ok {
			return "an integer from 0 to 65535"
		}
	case setHistory:
		if st.history, ok = parseInteger(value, 0, maxHistory); !ok {
			return "an integer from 0 to 1000000"
		}
	case setMaxClients:
		if st.maxClients, ok = parseInteger(value, 1, maxMaxClients); !ok {
			return "an integer from 1 to 100000"
		}
	case setAuthTimeout:
		if st.authTimeoutMs, ok = parseSeconds(value); !ok {
			return "a number of seconds from 0.001 to 3600, with at most 3 decimals"
		}
	case setKeyFile, setLog:
		if value == "" {
			return "a path"
		}
		if which == setKeyFile {
			st.keyFile = value
		} else {
			st.logPath = value
		}
	case setUser:
		if value == "" {
			return "a user name"
		}
		st.user = value
	}
	return ""
}

// joinPath is path if absolute, else dir/path (not cleaned, as in C).
func joinPath(dir, path string) string {
	if strings.HasPrefix(path, "/") {
		return path
	}
	if dir == "" || !strings.HasSuffix(dir, "/") {
		return dir + "/" + path
	}
	return dir + path
}

// absolutePath makes path absolute against the current directory as
// getcwd(3) names it (not $PWD, which os.Getwd may prefer).
func absolutePath(path string) string {
	if strings.HasPrefix(path, "/") {
		return path
	}
	cwd, err := syscall.Getwd()
	if err != nil {
		fatal("getcwd: %s", errText(err))
	}
	return joinPath(cwd, path)
}

// finish makes the key file, log and pid file paths absolute, so that they
// still name the same files after a daemon's chdir("/").
func (st *settings) finish() {
	st.keyFile = absolutePath(st.keyFile)
	st.logPath = absolutePath(st.logPath)
	if st.pidFile != "" {
		st.pidFile = absolutePath(st.pidFile)
	}
}
