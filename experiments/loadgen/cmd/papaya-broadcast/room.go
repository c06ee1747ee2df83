package main

import "sync"

// trimEvery is how many appends pass between attempts to drop delivered lines.
const trimEvery = 4096

// room is the chat log in memory and the clients reading it. Every client has its own
// position in the log; a client is woken after every append and sends everything from its
// position to the end, so each line reaches each client once, in log order, and a slow
// client delays only itself. Lines that every client has been sent (and that are older
// than the history) are dropped from time to time, so memory stays bounded by the
// slowest client's backlog.
type room struct {
	history int

	mu      sync.Mutex
	lines   [][]byte // lines[i] is log line base+i; never modified once appended
	base    int64
	clients map[*member]struct{}
	appends int
}

// member is one authenticated client's place in the room.
type member struct {
	next int64         // log index of the next line to send; guarded by room.mu
	wake chan struct{} // capacity 1: "there may be something to send"
}

func newRoom(history int) *room {
	return &room{history: history, clients: make(map[*member]struct{})}
}

func (r *room) end() int64 { return r.base + int64(len(r.lines)) }

// join adds a member positioned history lines before the end of the log.
func (r *room) join() *member {
	m := &member{wake: make(chan struct{}, 1)}
	r.mu.Lock()
	m.next = max(r.base, r.end()-int64(r.history))
	r.clients[m] = struct{}{}
	r.mu.Unlock()
	m.signal()
	return m
}

func (r *room) leave(m *member) {
	r.mu.Lock()
	delete(r.clients, m)
	r.mu.Unlock()
}

func (m *member) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// append adds one line (the caller's copy, kept as is) to the log and wakes everyone.
func (r *room) append(line []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, line)
	for m := range r.clients {
		m.signal()
	}
	if r.appends++; r.appends >= trimEvery {
		r.appends = 0
		r.trim()
	}
}

// trim drops the lines before both the history and every member's position, when that
// is at least half of the log. Slices handed out by pending stay valid: the remaining
// lines are copied to a new array.
func (r *room) trim() {
	keep := r.end() - int64(r.history)
	for m := range r.clients {
		keep = min(keep, m.next)
	}
	drop := keep - r.base
	if drop <= 0 || drop < int64(len(r.lines))/2 {
		return
	}
	r.lines = append([][]byte(nil), r.lines[drop:]...)
	r.base = keep
}

// pending returns the lines m has not been sent yet and moves m to the end of the log.
// The caller must not modify the returned slice's elements.
func (r *room) pending(m *member) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lines[m.next-r.base:]
	m.next = r.end()
	return out[:len(out):len(out)]
}
