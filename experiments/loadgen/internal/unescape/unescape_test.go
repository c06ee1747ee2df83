package unescape

import "testing"

func TestString(t *testing.T) {
	cases := map[string]string{
		``:                       "",
		`message`:                "message",
		`message\n`:              "message\n",
		`a\r\nb`:                 "a\r\nb",
		`\t`:                     "\t",
		`back\\slash`:            `back\slash`,
		`\\n`:                    `\n`,
		`\x00\x41\x7f\xFf`:       "\x00A\x7f\xff",
		`GET / HTTP/1.0\r\n\r\n`: "GET / HTTP/1.0\r\n\r\n",
	}
	for in, want := range cases {
		got, err := String(in)
		if err != nil {
			t.Errorf("String(%q): %v", in, err)
			continue
		}
		if got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStringRejects(t *testing.T) {
	for _, in := range []string{`\`, `abc\`, `\x`, `\x4`, `\xg0`, `\x0z`, `\q`, `\0`} {
		if got, err := String(in); err == nil {
			t.Errorf("String(%q) = %q, want an error", in, got)
		}
	}
}
