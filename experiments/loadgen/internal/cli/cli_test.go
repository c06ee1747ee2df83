package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, args ...string) Config {
	t.Helper()
	c, err := Parse(args)
	if err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	return c
}

func TestShortAndLongFormsAgree(t *testing.T) {
	forms := [][]string{
		{"-c", "4", "-T", "3s", "-m", "hi", "-1", "hello", "-r", "10", "127.0.0.1:5000"},
		{"-c4", "-T3s", "-mhi", "-1hello", "-r10", "127.0.0.1:5000"},
		{"--connections", "4", "--duration", "3s", "--message", "hi", "--first-message", "hello",
			"--message-rate", "10", "127.0.0.1:5000"},
		{"--connections=4", "--duration=3s", "--message=hi", "--first-message=hello",
			"--message-rate=10", "127.0.0.1:5000"},
		{"127.0.0.1:5000", "--connections=4", "-T", "3s", "--message", "hi", "-1", "hello", "-r", "10"},
	}
	for _, args := range forms {
		c := mustParse(t, args...)
		if c.Connections != 4 || c.Duration != 3*time.Second || c.Message != "hi" ||
			c.FirstMessage != "hello" || !c.HasFirst || c.MessageRate != 10 ||
			c.Target != "127.0.0.1:5000" {
			t.Errorf("Parse(%q) = %+v", args, c)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, "localhost:80")
	if c.Connections != 1 || c.Duration != 10*time.Second || c.ConnectRate != 100 ||
		!c.WriteCombine || c.Message != "" || c.HasFirst || c.BandwidthBps != 0 ||
		c.ConnectTimeout != time.Second || c.Nagle != NagleDefault {
		t.Errorf("defaults: %+v", c)
	}
}

func TestBandwidthUnitsAndOptions(t *testing.T) {
	c := mustParse(t, "-m", "x", "--channel-bandwidth-upstream", "125kBps", "--connect-rate", "5000",
		"--write-combine", "off", "--nagle=on", "--json", "/tmp/x.json", "--connect-timeout", "250ms",
		"[::1]:9")
	if c.BandwidthBps != 1e6 || c.ConnectRate != 5000 || c.WriteCombine || c.Nagle != NagleOn ||
		c.JSONPath != "/tmp/x.json" || c.ConnectTimeout != 250*time.Millisecond || c.Target != "[::1]:9" {
		t.Errorf("got %+v", c)
	}
	if got := c.PerConnectionTarget(); got != 1e6 {
		t.Errorf("PerConnectionTarget = %g", got)
	}
	c = mustParse(t, "-m", "12345678", "-r", "1000", "h:1")
	if got := c.PerConnectionTarget(); got != 64000 {
		t.Errorf("message-rate target = %g, want 64000", got)
	}
}

func TestWriteInterval(t *testing.T) {
	if c := mustParse(t, "--write-interval", "5ms", "h:1"); c.WriteInterval != 5*time.Millisecond {
		t.Errorf("--write-interval 5ms = %v", c.WriteInterval)
	}
	if c := mustParse(t, "--write-interval=auto", "h:1"); c.WriteInterval != 0 {
		t.Errorf("--write-interval auto = %v", c.WriteInterval)
	}
	for _, bad := range []string{"0", "100us", "1d", "11s", "soon"} {
		if _, err := Parse([]string{"--write-interval", bad, "h:1"}); err == nil ||
			!strings.Contains(err.Error(), "--write-interval") {
			t.Errorf("--write-interval %s: err = %v", bad, err)
		}
	}
}

func TestDurationUnits(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"500ms": 500 * time.Millisecond, "10s": 10 * time.Second, "2m": 2 * time.Minute,
		"1h": time.Hour, "7": 7 * time.Second,
	} {
		if c := mustParse(t, "--connect-rate", "1e6", "-T", in, "h:1"); c.Duration != want {
			t.Errorf("-T %s = %v, want %v", in, c.Duration, want)
		}
	}
}

func TestUnescape(t *testing.T) {
	c := mustParse(t, "-e", "-m", `message\n`, "-1", `GET /\r\n\x00`, "h:1")
	if c.Message != "message\n" || c.FirstMessage != "GET /\r\n\x00" {
		t.Errorf("got %q %q", c.Message, c.FirstMessage)
	}
	// -e applies to all messages, wherever it appears.
	c = mustParse(t, "-m", `a\tb`, "--unescape-message-args", "h:1")
	if c.Message != "a\tb" {
		t.Errorf("got %q", c.Message)
	}
	// Without -e messages are taken literally.
	c = mustParse(t, "-m", `a\tb`, "h:1")
	if c.Message != `a\tb` {
		t.Errorf("got %q", c.Message)
	}
	// Clustered value-less short options.
	c = mustParse(t, "-eh")
	if !c.Unescape || !c.Help {
		t.Errorf("-eh: %+v", c)
	}
}

func TestDoubleDashEndsOptions(t *testing.T) {
	c := mustParse(t, "-c", "2", "--", "host:1")
	if c.Target != "host:1" || c.Connections != 2 {
		t.Errorf("got %+v", c)
	}
	// A message may begin with a dash when given as a separate argument.
	c = mustParse(t, "-m", "-dash", "host:1")
	if c.Message != "-dash" {
		t.Errorf("got %q", c.Message)
	}
}

func TestVersionAndHelpNeedNoTarget(t *testing.T) {
	if c := mustParse(t, "--version"); !c.Version {
		t.Error("--version not set")
	}
	if c := mustParse(t, "--help"); !c.Help {
		t.Error("--help not set")
	}
}

func TestUsageErrorsNameTheFlagAndValue(t *testing.T) {
	cases := []struct {
		args []string
		want []string // substrings of the message
	}{
		{[]string{"-m", "x", "--channel-bandwidth-upstream", "10xbps", "h:1"},
			[]string{"--channel-bandwidth-upstream", `"10xbps"`}},
		{[]string{"-m", "x", "--channel-bandwidth-upstream=1Mbit", "h:1"},
			[]string{"--channel-bandwidth-upstream", `"1Mbit"`}},
		{[]string{"-c", "0", "h:1"}, []string{"--connections", `"0"`}},
		{[]string{"-c", "many", "h:1"}, []string{"--connections", `"many"`}},
		{[]string{"--connections=-3", "h:1"}, []string{"--connections", `"-3"`}},
		{[]string{"-T", "10 parsecs", "h:1"}, []string{"--duration", `"10 parsecs"`}},
		{[]string{"-T", "0", "h:1"}, []string{"--duration", `"0"`}},
		{[]string{"-r", "fast", "-m", "x", "h:1"}, []string{"--message-rate", `"fast"`}},
		{[]string{"--connect-rate", "0", "h:1"}, []string{"--connect-rate", `"0"`}},
		{[]string{"--write-combine", "maybe", "h:1"}, []string{"--write-combine", `"maybe"`}},
		{[]string{"--nagle=yes", "h:1"}, []string{"--nagle", `"yes"`}},
		{[]string{"-e", "-m", `bad\q`, "h:1"}, []string{"--message", `\q`}},
		{[]string{"-e", "-m", "x", "-1", `\x4`, "h:1"}, []string{"--first-message", `\x`}},
		{[]string{"--bogus", "h:1"}, []string{"unknown option --bogus"}},
		{[]string{"-Z", "h:1"}, []string{"unknown option -Z"}},
		{[]string{"-c"}, []string{"--connections", "needs a value"}},
		{[]string{"--message"}, []string{"--message", "needs a value"}},
		{[]string{"--version=1"}, []string{"--version", "takes no value"}},
		{[]string{"-c", "1"}, []string{"missing target"}},
		{[]string{"a:1", "b:2"}, []string{"one target"}},
		{[]string{"localhost"}, []string{"host:port"}},
		{[]string{"localhost:http"}, []string{"port"}},
		{[]string{"localhost:0"}, []string{"port"}},
		{[]string{"--channel-bandwidth-upstream", "1Mbps", "h:1"},
			[]string{"--channel-bandwidth-upstream", "--message"}},
		{[]string{"-r", "5", "h:1"}, []string{"--message-rate", "--message"}},
		{[]string{"-m", "x", "-r", "5", "--channel-bandwidth-upstream", "1Mbps", "h:1"},
			[]string{"--message-rate", "--channel-bandwidth-upstream"}},
		{[]string{"-m", "a", "-m", "b", "h:1"}, []string{"--message", "more than once"}},
		{[]string{"-c", "1000", "-T", "5s", "h:1"}, []string{"--connect-rate", "--duration"}},
	}
	for _, c := range cases {
		_, err := Parse(c.args)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("Parse(%q): want a UsageError, got %v", c.args, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Parse(%q) error %q does not mention %q", c.args, err, w)
			}
		}
	}
}

func TestSlowRampUpIsAWarning(t *testing.T) {
	c := mustParse(t, "-c", "200", "-T", "10s", "h:1") // 2 s of a 10 s run at 100/s
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "connect-rate") {
		t.Errorf("warnings = %q", c.Warnings)
	}
	if c := mustParse(t, "-c", "5", "-T", "10s", "h:1"); len(c.Warnings) != 0 {
		t.Errorf("unexpected warnings %q", c.Warnings)
	}
}

func writeKey(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestChatMode(t *testing.T) {
	key := strings.Repeat("k", 128)
	path := writeKey(t, key+"\n")
	c := mustParse(t, "--chat", "--key-file", path, "-r", "10", "-c", "16", "h:1")
	if !c.Chat || string(c.Key) != key || c.MessageRate != 10 || c.MessageSize != 64 ||
		c.UsernamePrefix != "user" || c.Drain != time.Second {
		t.Errorf("defaults: %+v", c)
	}
	if got := c.PerConnectionTarget(); got != 10*64*8 {
		t.Errorf("PerConnectionTarget = %g", got)
	}
	c = mustParse(t, "--chat", "--key-file="+path, "--message-rate=2.5", "--message-size", "4096",
		"--username-prefix", "bot-A.1_", "--drain", "250ms", "h:1")
	if c.MessageSize != 4096 || c.UsernamePrefix != "bot-A.1_" || c.Drain != 250*time.Millisecond ||
		c.MessageRate != 2.5 {
		t.Errorf("options: %+v", c)
	}
	if c := mustParse(t, "--chat", "--key-file", path, "-r", "1", "--drain", "0", "h:1"); c.Drain != 0 {
		t.Errorf("--drain 0 = %v", c.Drain)
	}
}

func TestChatUsageErrors(t *testing.T) {
	good := writeKey(t, strings.Repeat("k", 128))
	short := writeKey(t, strings.Repeat("k", 100))
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--chat", "-r", "10", "h:1"}, []string{"--chat", "--key-file"}},
		{[]string{"--chat", "--key-file", good, "h:1"}, []string{"--chat", "--message-rate"}},
		{[]string{"--chat", "--key-file", short, "-r", "1", "h:1"},
			[]string{"--key-file", short, "100 bytes", "128 printable ASCII"}},
		{[]string{"--chat", "--key-file", short + ".missing", "-r", "1", "h:1"},
			[]string{"--key-file", "no such file"}},
		{[]string{"--chat", "--key-file", good, "-r", "1", "-m", "x", "h:1"}, []string{"--message", "--chat"}},
		{[]string{"--chat", "--key-file", good, "-r", "1", "-1", "x", "h:1"},
			[]string{"--first-message", "--chat"}},
		{[]string{"--chat", "--key-file", good, "--channel-bandwidth-upstream", "1Mbps", "h:1"},
			[]string{"--channel-bandwidth-upstream", "--chat"}},
		{[]string{"--key-file", good, "-r", "1", "h:1"}, []string{"--key-file", "only applies with --chat"}},
		{[]string{"--drain", "1s", "h:1"}, []string{"--drain", "only applies with --chat"}},
		{[]string{"--chat", "--key-file", good, "-r", "1", "--message-size", "5000", "h:1"},
			[]string{"--message-size", `"5000"`, "4096"}},
		{[]string{"--chat", "--key-file", good, "-r", "1", "--message-size", "40", "h:1"},
			[]string{"--message-size", "40 bytes", "at least 49"}},
		{[]string{"--chat", "--key-file", good, "-r", "1", "--username-prefix", "a b", "h:1"},
			[]string{"--username-prefix", `"a b"`}},
		{[]string{"--chat", "--key-file", good, "-r", "1", "--username-prefix", "a:", "h:1"},
			[]string{"--username-prefix", `"a:"`}},
		{[]string{"--chat", "--key-file", good, "-r", "1", "--drain", "2m", "h:1"},
			[]string{"--drain", `"2m"`}},
	}
	for _, c := range cases {
		_, err := Parse(c.args)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("Parse(%q): want a UsageError, got %v", c.args, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Parse(%q) error %q does not mention %q", c.args, err, w)
			}
		}
	}
}
