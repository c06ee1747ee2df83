package main

import (
	"fmt"
	"testing"
)

func drain(r *room, m *member) []string {
	var out []string
	for _, l := range r.pending(m) {
		out = append(out, string(l))
	}
	return out
}

func TestRoomHistoryAndExactlyOnce(t *testing.T) {
	r := newRoom(2)
	a := r.join()
	if got := drain(r, a); len(got) != 0 {
		t.Fatalf("empty log gave %q", got)
	}
	for i := 1; i <= 3; i++ {
		r.append([]byte(fmt.Sprintf("line %d\n", i)))
	}
	b := r.join() // gets the last two lines as history
	if got := fmt.Sprint(drain(r, b)); got != "[line 2\n line 3\n]" {
		t.Errorf("history = %q", got)
	}
	r.append([]byte("line 4\n"))
	if got := fmt.Sprint(drain(r, a)); got != "[line 1\n line 2\n line 3\n line 4\n]" {
		t.Errorf("a got %q", got)
	}
	if got := fmt.Sprint(drain(r, b)); got != "[line 4\n]" {
		t.Errorf("b got %q", got)
	}
	if got := drain(r, a); len(got) != 0 {
		t.Errorf("a got %q twice", got)
	}
}

func TestRoomTrimKeepsBacklogAndHistory(t *testing.T) {
	r := newRoom(7)
	slow, fast := r.join(), r.join()
	total := 3 * trimEvery
	for i := 0; i < total; i++ {
		r.append([]byte(fmt.Sprintf("%d\n", i)))
		if i == trimEvery/2 {
			drain(r, slow) // the slow reader reads once, early
		}
		drain(r, fast)
	}
	if r.base == 0 || len(r.lines) >= total {
		t.Errorf("nothing trimmed: base %d, %d lines", r.base, len(r.lines))
	}
	got := drain(r, slow)
	if len(got) != total-trimEvery/2-1 || got[0] != fmt.Sprintf("%d\n", trimEvery/2+1) {
		t.Errorf("slow reader lost lines: %d, first %q", len(got), got[0])
	}
	if h := drain(r, r.join()); len(h) != 7 || h[6] != fmt.Sprintf("%d\n", total-1) {
		t.Errorf("history after trim: %q", h)
	}
}
