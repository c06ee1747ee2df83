package main

import (
	"os"
	"strings"
)

// readConfigFile reads st.configPath and applies every setting that the
// command line did not set. The format, as for the C server: one KEY=value
// per line; spaces and tabs around the key and the value are ignored, as are
// empty lines and lines starting with '#'. A relative KEY_FILE or LOG is
// relative to the config file's folder. Any error is fatal.
func (st *settings) readConfigFile() {
	path := st.configPath
	data, err := os.ReadFile(path)
	if err != nil {
		fatal("cannot read config file %s: %s", path, errText(err))
	}
	folder := folderOf(path)

	lines := strings.Split(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // the file's last newline
	}
	for j, line := range lines {
		lineNum := j + 1
		if strings.IndexByte(line, 0) >= 0 {
			fatal("%s line %d: contains a NUL byte", path, lineNum)
		}
		text := strings.Trim(line, " \t\r")
		if text == "" || text[0] == '#' {
			continue
		}
		st.applyConfigLine(path, lineNum, text, folder)
	}
}

func (st *settings) applyConfigLine(path string, lineNum int, line, folder string) {
	key, value, found := strings.Cut(line, "=")
	if !found {
		fatal("%s line %d: expected KEY=value", path, lineNum)
	}
	key = strings.Trim(key, " \t\r")
	value = strings.Trim(value, " \t\r")

	which := -1
	for j, name := range keyNames {
		if key == name {
			which = j
		}
	}
	if which == -1 {
		fatal("%s line %d: unknown key '%s' (known keys: PORT KEY_FILE LOG "+
			"HISTORY MAX_CLIENTS AUTH_TIMEOUT USER)", path, lineNum, key)
	}
	if (which == setKeyFile || which == setLog) && value != "" {
		value = joinPath(folder, value)
	}

	// Every value is checked, even one that the command line overrides.
	scratch := *st
	if expected := scratch.applySetting(which, value); expected != "" {
		fatal("%s line %d: invalid value '%s' for %s: expected %s",
			path, lineNum, value, key, expected)
	}
	if !st.fromCommandLine[which] {
		*st = scratch
	}
}

// folderOf is the folder of path, made absolute.
func folderOf(path string) string {
	abs := absolutePath(path)
	i := strings.LastIndexByte(abs, '/')
	if i == 0 {
		return "/"
	}
	return abs[:i]
}
