package chat

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAppendLineAndParse(t *testing.T) {
	const tNano = 1764000000123456789
	b := AppendLine(nil, []byte("user7"), tNano, 42, "1a2b3c4d", 64)
	want := "user7: t=1764000000123456789 seq=42 run=1a2b3c4d "
	want += strings.Repeat("x", 63-len(want)) + "\n"
	if string(b) != want || len(b) != 64 {
		t.Fatalf("AppendLine = %q (%d bytes), want %q", b, len(b), want)
	}
	l, ok := Parse(b)
	if !ok || string(l.User) != "user7" || l.T != tNano || l.Seq != 42 || string(l.Run) != "1a2b3c4d" {
		t.Errorf("Parse = %+v, %v", l, ok)
	}
	// Exactly fitting (no room for padding), one byte of room (a lone space), and too
	// small (never truncated).
	head := len("user7: t=1764000000123456789 seq=42 run=1a2b3c4d")
	for size, want := range map[int]int{head + 1: head + 1, head + 2: head + 2, 10: head + 1} {
		b := AppendLine([]byte("prefix"), []byte("user7"), tNano, 42, "1a2b3c4d", size)
		if len(b)-len("prefix") != want || b[len(b)-1] != '\n' {
			t.Errorf("size %d: got %q", size, b)
		}
		if l, ok := Parse(b[len("prefix"):]); !ok || l.Seq != 42 {
			t.Errorf("size %d: does not parse back: %q", size, b)
		}
	}
	if got := HeaderSize(len("user7"), 42, 8); got != head {
		t.Errorf("HeaderSize = %d, want %d", got, head)
	}
}

func TestParseRejectsOtherLines(t *testing.T) {
	for _, s := range []string{
		"", "\n", "alice: hello\n", ": t=1 seq=2 run=ab\n", "bob: t= seq=2 run=ab\n",
		"bob: t=1 seq=x run=ab\n", "bob: t=1 seq=2\n", "bob: t=1 seq=2 run=\n",
		"bob: t=99999999999999999999 seq=2 run=ab\n", "bob: t=1seq=2 run=ab\n",
	} {
		if l, ok := Parse([]byte(s)); ok {
			t.Errorf("Parse(%q) = %+v, want not ok", s, l)
		}
	}
	// Another client's text after the fields is fine, and so is a line without newline.
	if l, ok := Parse([]byte("bob: t=1 seq=2 run=ab")); !ok || string(l.Run) != "ab" {
		t.Errorf("no newline: %+v %v", l, ok)
	}
}

func TestTally(t *testing.T) {
	const run = "cafe0001"
	line := func(user string, tNano, seq int64, run string) []byte {
		return AppendLine(nil, []byte(user), tNano, seq, run, 80)
	}
	// Joined when 10 lines had been sent; three senders.
	tl := NewTally(run, "user", 3, 10)
	tl.Add(line("user1", 1000, 9, run), 5000)      // history: sent before the join
	tl.Add(line("user1", 1000, 11, "other"), 5000) // another run
	tl.Add([]byte("alice: hi\n"), 5000)            // not a load line
	tl.Add(line("user4", 1000, 12, run), 5000)     // no such sender
	tl.Add(line("user01", 1000, 12, run), 5000)    // not how senders are named
	tl.Add(line("admin2", 1000, 12, run), 5000)    // wrong prefix
	tl.Add(line("user1", 1000, 11, run), 1500)     // live, 500 ns
	tl.Add(line("user2", 2000, 13, run), 2700)     // live, 700 ns
	tl.Add(line("user1", 1000, 11, run), 9000)     // duplicate
	tl.Add(line("user3", 2000, 14, run), 2100)     // live, 100 ns
	tl.Add(line("user2", 2000, 12, run), 2500)     // older than user2's last: out of order
	if tl.Live() != 3 || tl.Other != 6 || tl.OutOfOrder != 2 {
		t.Errorf("live %d other %d out of order %d", tl.Live(), tl.Other, tl.OutOfOrder)
	}
	h := tl.Latency
	if h.Count() != 3 || h.Min() != 100 || h.Max() != 700 || h.Quantile(0.5) != 500 {
		t.Errorf("latency count %d min %d max %d p50 %d", h.Count(), h.Min(), h.Max(), h.Quantile(0.5))
	}
	if got := string(UserName("user", 6)); got != "user7" {
		t.Errorf("UserName = %q", got)
	}
	if id := NewRunID(); len(id) != 8 || id == NewRunID() {
		t.Errorf("NewRunID = %q", id)
	}
}

func TestReadKey(t *testing.T) {
	dir := t.TempDir()
	key := strings.Repeat("0123456789abcdef", 8)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, content := range map[string]string{"plain": key, "newline": key + "\n"} {
		got, err := ReadKey(write(name, content))
		if err != nil || !bytes.Equal(got, []byte(key)) {
			t.Errorf("%s: ReadKey = %q, %v", name, got, err)
		}
	}
	spaces := strings.Repeat(" ~", 64) // space and tilde are printable too
	if _, err := ReadKey(write("spaces", spaces)); err != nil {
		t.Errorf("printable key with spaces: %v", err)
	}
	bad := map[string]string{
		"short":      key[:127],
		"short-nl":   key[:127] + "\n",
		"long":       key + "x",
		"two-nl":     key + "\n\n",
		"crlf":       key + "\r\n",
		"huge":       strings.Repeat(key, 100),
		"empty":      "",
		"tab":        key[:5] + "\t" + key[6:],
		"nul":        key[:127] + "\x00",
		"non-ascii":  key[:126] + "é",
		"newline-in": key[:64] + "\n" + key[65:],
	}
	for name, content := range bad {
		_, err := ReadKey(write(name, content))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, filepath.Join(dir, name)) || !strings.Contains(msg, "128 printable ASCII") {
			t.Errorf("%s: unclear message %q", name, msg)
		}
	}
	if _, err := ReadKey(write("huge", strings.Repeat(key, 100))); err == nil ||
		!strings.Contains(err.Error(), "12800 bytes") {
		t.Errorf("huge: %v", err)
	}
	if _, err := ReadKey(write("tab", key[:5]+"\t"+key[6:])); err == nil ||
		!strings.Contains(err.Error(), "byte 6 is 0x09") {
		t.Errorf("tab: %v", err)
	}
	if _, err := ReadKey(filepath.Join(dir, "missing")); err == nil ||
		!strings.Contains(err.Error(), "missing") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing: %v", err)
	}
}
