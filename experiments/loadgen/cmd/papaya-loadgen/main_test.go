package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--version"}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if got := out.String(); got != "papaya-loadgen 0.2.0\n" {
		t.Errorf("--version printed %q", got)
	}
}

func TestUsageErrorExits2(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"-m", "x", "--channel-bandwidth-upstream", "3furlongs", "127.0.0.1:9"}, &out, &errOut)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(errOut.String(), "--channel-bandwidth-upstream") ||
		!strings.Contains(errOut.String(), "3furlongs") || out.Len() != 0 {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
}

func TestNoConnectionExits1WithSummary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	jsonPath := filepath.Join(t.TempDir(), "loadgen.json")
	var out, errOut bytes.Buffer
	code := run([]string{"-c", "2", "-T", "5s", "--json", jsonPath, addr}, &out, &errOut)
	if code != exitNoneOpen {
		t.Fatalf("exit %d, want %d; stderr %s", code, exitNoneOpen, errOut.String())
	}
	var s map[string]any
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	file, err := os.ReadFile(jsonPath)
	if err != nil || !bytes.Equal(file, out.Bytes()) {
		t.Errorf("--json file differs from stdout (%v)", err)
	}
	if !strings.Contains(errOut.String(), "connection refused") {
		t.Errorf("stderr does not mention the refusal: %s", errOut.String())
	}
}

func TestBadJSONPathIsAUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	bad := filepath.Join(t.TempDir(), "missing-dir", "x.json")
	if code := run([]string{"--json", bad, "127.0.0.1:9"}, &out, &errOut); code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(errOut.String(), "--json") {
		t.Errorf("stderr %q", errOut.String())
	}
}
