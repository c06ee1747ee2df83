// Package cli parses papaya-loadgen's tcpkali-style command line.
//
// Go's flag package has no GNU-style short/long aliases, so this is a small getopt_long
// work-alike: "-c 4", "-c4", "--connections 4" and "--connections=4" are all accepted;
// value-less short options may be clustered ("-eh"); "--" ends the options; anything
// else is a positional argument (the one target host:port).
package cli

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"papaya/loadgen/internal/chat"
	"papaya/loadgen/internal/unescape"
	"papaya/loadgen/internal/units"
)

// Nagle is the TCP_NODELAY policy.
type Nagle int

// Nagle settings: the default leaves Nagle's algorithm on when writes are combined and
// turns it off with --write-combine off, as tcpkali does.
const (
	NagleDefault Nagle = iota
	NagleOn
	NagleOff
)

// Config is a parsed command line.
type Config struct {
	Target         string
	Connections    int
	Duration       time.Duration
	Message        string // empty: connect but send nothing (besides a first message)
	FirstMessage   string
	HasFirst       bool
	Unescape       bool
	BandwidthBps   float64 // per connection, bits/s; 0 when not given
	MessageRate    float64 // messages/s per connection; 0 when not given
	ConnectRate    float64 // new connections per second
	ConnectTimeout time.Duration
	WriteCombine   bool
	WriteInterval  time.Duration // time between paced writes; 0: auto (about one MTU per write)
	Nagle          Nagle
	JSONPath       string
	Version        bool
	Help           bool
	Warnings       []string // non-fatal remarks for stderr

	// Chat mode (--chat).
	Chat           bool
	KeyFile        string
	Key            []byte // the key file's 128 characters, read by Parse
	MessageSize    int    // bytes per line, newline included
	UsernamePrefix string
	Drain          time.Duration
	chatOptions    []string // chat-only options given (an error without --chat)
}

// Chat-mode defaults.
const (
	DefaultMessageSize    = 64
	DefaultUsernamePrefix = "user"
	DefaultDrain          = time.Second
)

// Defaults follow tcpkali: one connection, 10 s, 100 connections/s, 1 s connect timeout,
// write combining on.
func Defaults() Config {
	return Config{
		Connections:    1,
		Duration:       10 * time.Second,
		ConnectRate:    100,
		ConnectTimeout: time.Second,
		WriteCombine:   true,
		MessageSize:    DefaultMessageSize,
		UsernamePrefix: DefaultUsernamePrefix,
		Drain:          DefaultDrain,
	}
}

// UsageError is a bad command line; Flag names the option ("" for positional trouble).
type UsageError struct {
	Flag string
	Msg  string
}

func (e *UsageError) Error() string {
	if e.Flag == "" {
		return e.Msg
	}
	return e.Flag + ": " + e.Msg
}

type option struct {
	short    byte // 0 when there is no short form
	long     string
	hasValue bool
	apply    func(c *Config, value string) error
}

func (o *option) name() string {
	if o.short != 0 {
		return fmt.Sprintf("-%c/--%s", o.short, o.long)
	}
	return "--" + o.long
}

var options = []*option{
	{'c', "connections", true, func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return fmt.Errorf("invalid value %q: expected a positive integer", v)
		}
		c.Connections = n
		return nil
	}},
	{'T', "duration", true, func(c *Config, v string) error {
		s, err := units.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("invalid value %q: %v", v, err)
		}
		if s <= 0 || s*1e9 > math.MaxInt64 {
			return fmt.Errorf("invalid value %q: expected a positive duration", v)
		}
		c.Duration = time.Duration(math.Round(s * 1e9))
		return nil
	}},
	{'m', "message", true, func(c *Config, v string) error {
		if c.Message != "" {
			return fmt.Errorf("given more than once (one message per run)")
		}
		if v == "" {
			return fmt.Errorf("empty message")
		}
		c.Message = v
		return nil
	}},
	{'1', "first-message", true, func(c *Config, v string) error {
		if c.HasFirst {
			return fmt.Errorf("given more than once")
		}
		c.FirstMessage, c.HasFirst = v, true
		return nil
	}},
	{'e', "unescape-message-args", false, func(c *Config, _ string) error {
		c.Unescape = true
		return nil
	}},
	{0, "channel-bandwidth-upstream", true, func(c *Config, v string) error {
		bps, err := units.ParseBandwidth(v)
		if err != nil {
			return fmt.Errorf("invalid value %q: %v", v, err)
		}
		if bps <= 0 {
			return fmt.Errorf("invalid value %q: expected a positive bandwidth", v)
		}
		c.BandwidthBps = bps
		return nil
	}},
	{'r', "message-rate", true, func(c *Config, v string) error {
		r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || !(r > 0) || math.IsInf(r, 0) {
			return fmt.Errorf("invalid value %q: expected a positive number of messages per second", v)
		}
		c.MessageRate = r
		return nil
	}},
	{0, "connect-rate", true, func(c *Config, v string) error {
		r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || !(r > 0) || math.IsInf(r, 0) {
			return fmt.Errorf("invalid value %q: expected a positive number of connections per second", v)
		}
		c.ConnectRate = r
		return nil
	}},
	{0, "connect-timeout", true, func(c *Config, v string) error {
		s, err := units.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("invalid value %q: %v", v, err)
		}
		if s <= 0 || s > 3600 {
			return fmt.Errorf("invalid value %q: expected a positive duration up to 1h", v)
		}
		c.ConnectTimeout = time.Duration(math.Round(s * 1e9))
		return nil
	}},
	{0, "write-combine", true, func(c *Config, v string) error {
		on, err := onOff(v)
		if err != nil {
			return err
		}
		c.WriteCombine = on
		return nil
	}},
	{0, "write-interval", true, func(c *Config, v string) error {
		if v == "auto" {
			c.WriteInterval = 0
			return nil
		}
		s, err := units.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("invalid value %q: %v", v, err)
		}
		if s < 0.0005 || s > 10 {
			return fmt.Errorf("invalid value %q: expected auto or a duration from 500us to 10s", v)
		}
		c.WriteInterval = time.Duration(math.Round(s * 1e9))
		return nil
	}},
	{0, "nagle", true, func(c *Config, v string) error {
		on, err := onOff(v)
		if err != nil {
			return err
		}
		c.Nagle = NagleOff
		if on {
			c.Nagle = NagleOn
		}
		return nil
	}},
	{0, "chat", false, func(c *Config, _ string) error {
		c.Chat = true
		return nil
	}},
	{0, "key-file", true, func(c *Config, v string) error {
		if v == "" {
			return fmt.Errorf("empty path")
		}
		c.KeyFile = v
		c.chatOptions = append(c.chatOptions, "--key-file")
		return nil
	}},
	{0, "message-size", true, func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > chat.MaxLine {
			return fmt.Errorf("invalid value %q: expected a number of bytes up to %d (the "+
				"protocol's longest line)", v, chat.MaxLine)
		}
		c.MessageSize = n
		c.chatOptions = append(c.chatOptions, "--message-size")
		return nil
	}},
	{0, "username-prefix", true, func(c *Config, v string) error {
		if v == "" || len(v) > 64 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz"+
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
			return fmt.Errorf("invalid value %q: expected 1 to 64 letters, digits, _ . or -", v)
		}
		c.UsernamePrefix = v
		c.chatOptions = append(c.chatOptions, "--username-prefix")
		return nil
	}},
	{0, "drain", true, func(c *Config, v string) error {
		s, err := units.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("invalid value %q: %v", v, err)
		}
		if s < 0 || s > 60 {
			return fmt.Errorf("invalid value %q: expected a duration from 0 to 1m", v)
		}
		c.Drain = time.Duration(math.Round(s * 1e9))
		c.chatOptions = append(c.chatOptions, "--drain")
		return nil
	}},
	{0, "json", true, func(c *Config, v string) error {
		if v == "" {
			return fmt.Errorf("empty path")
		}
		c.JSONPath = v
		return nil
	}},
	{0, "version", false, func(c *Config, _ string) error {
		c.Version = true
		return nil
	}},
	{'h', "help", false, func(c *Config, _ string) error {
		c.Help = true
		return nil
	}},
}

func onOff(v string) (bool, error) {
	switch v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("invalid value %q: expected on or off", v)
}

func lookupLong(name string) *option {
	for _, o := range options {
		if o.long == name {
			return o
		}
	}
	return nil
}

func lookupShort(c byte) *option {
	for _, o := range options {
		if o.short != 0 && o.short == c {
			return o
		}
	}
	return nil
}

// Parse parses args (without the program name). With --version or --help it returns
// as soon as the command line is well-formed, without checking the target.
func Parse(args []string) (Config, error) {
	c := Defaults()
	var positional []string
	apply := func(o *option, v string) error {
		if err := o.apply(&c, v); err != nil {
			return &UsageError{Flag: o.name(), Msg: err.Error()}
		}
		return nil
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(arg, "--"):
			name, value, hasValue := strings.Cut(arg[2:], "=")
			o := lookupLong(name)
			if o == nil {
				return c, &UsageError{Msg: fmt.Sprintf("unknown option --%s (see --help)", name)}
			}
			if !o.hasValue {
				if hasValue {
					return c, &UsageError{Flag: o.name(), Msg: "takes no value"}
				}
				if err := apply(o, ""); err != nil {
					return c, err
				}
				continue
			}
			if !hasValue {
				if i+1 >= len(args) {
					return c, &UsageError{Flag: o.name(), Msg: "needs a value"}
				}
				i++
				value = args[i]
			}
			if err := apply(o, value); err != nil {
				return c, err
			}
		case len(arg) > 1 && arg[0] == '-':
			for j := 1; j < len(arg); j++ {
				o := lookupShort(arg[j])
				if o == nil {
					return c, &UsageError{Msg: fmt.Sprintf("unknown option -%c (see --help)", arg[j])}
				}
				if !o.hasValue {
					if err := apply(o, ""); err != nil {
						return c, err
					}
					continue
				}
				value := arg[j+1:]
				if value == "" {
					if i+1 >= len(args) {
						return c, &UsageError{Flag: o.name(), Msg: "needs a value"}
					}
					i++
					value = args[i]
				}
				if err := apply(o, value); err != nil {
					return c, err
				}
				break
			}
		default:
			positional = append(positional, arg)
		}
	}
	if c.Version || c.Help {
		return c, nil
	}
	return c, c.finish(positional)
}

// finish checks the options against each other and the positional target.
func (c *Config) finish(positional []string) error {
	switch len(positional) {
	case 0:
		return &UsageError{Msg: "missing target host:port"}
	case 1:
	default:
		return &UsageError{Msg: fmt.Sprintf("expected one target host:port, got %d: %s",
			len(positional), strings.Join(positional, " "))}
	}
	host, port, err := net.SplitHostPort(positional[0])
	if err != nil || host == "" {
		return &UsageError{Msg: fmt.Sprintf("bad target %q: expected host:port", positional[0])}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return &UsageError{Msg: fmt.Sprintf("bad target %q: port must be 1..65535", positional[0])}
	}
	c.Target = positional[0]

	if c.Unescape {
		m, err := unescape.String(c.Message)
		if err != nil {
			return &UsageError{Flag: "-m/--message", Msg: err.Error()}
		}
		f, err := unescape.String(c.FirstMessage)
		if err != nil {
			return &UsageError{Flag: "-1/--first-message", Msg: err.Error()}
		}
		if c.Message != "" && m == "" {
			return &UsageError{Flag: "-m/--message", Msg: "empty after unescaping"}
		}
		c.Message, c.FirstMessage = m, f
	}
	if c.Chat {
		if err := c.finishChat(); err != nil {
			return err
		}
	} else if len(c.chatOptions) > 0 {
		return &UsageError{Flag: c.chatOptions[0], Msg: "only applies with --chat"}
	}
	if c.BandwidthBps > 0 && c.MessageRate > 0 {
		return &UsageError{Flag: "-r/--message-rate",
			Msg: "cannot be combined with --channel-bandwidth-upstream (give one pacing)"}
	}
	if c.BandwidthBps > 0 && c.Message == "" {
		return &UsageError{Flag: "--channel-bandwidth-upstream", Msg: "makes no sense without -m/--message"}
	}
	if c.MessageRate > 0 && c.Message == "" && !c.Chat {
		return &UsageError{Flag: "-r/--message-rate", Msg: "makes no sense without -m/--message"}
	}
	ramp := float64(c.Connections) / c.ConnectRate
	if limit := c.Duration.Seconds(); ramp > limit {
		return &UsageError{Flag: "--connect-rate", Msg: fmt.Sprintf(
			"%d connections at %g/s take %gs to open, longer than --duration %gs; "+
				"raise --connect-rate or --duration", c.Connections, c.ConnectRate, ramp, limit)}
	} else if ramp > limit/10 {
		c.Warnings = append(c.Warnings, fmt.Sprintf(
			"%d connections at --connect-rate %g take %gs to open, over a tenth of --duration %gs; "+
				"the ramp-up lowers the aggregate bandwidth", c.Connections, c.ConnectRate, ramp, limit))
	}
	return nil
}

// finishChat checks the chat-mode options and reads the key file.
func (c *Config) finishChat() error {
	switch {
	case c.Message != "":
		return &UsageError{Flag: "-m/--message",
			Msg: "cannot be combined with --chat (chat mode writes its own lines; see --message-size)"}
	case c.HasFirst:
		return &UsageError{Flag: "-1/--first-message",
			Msg: "cannot be combined with --chat (the key is the first message)"}
	case c.BandwidthBps > 0:
		return &UsageError{Flag: "--channel-bandwidth-upstream",
			Msg: "cannot be combined with --chat (pace lines with -r/--message-rate)"}
	case c.MessageRate == 0:
		return &UsageError{Flag: "--chat", Msg: "needs -r/--message-rate (lines per second per connection)"}
	case c.KeyFile == "":
		return &UsageError{Flag: "--chat", Msg: "needs --key-file PATH (the 128-character key sent first)"}
	}
	// Every line is padded to the same size, so the size must hold the longest text:
	// the longest user name and sequence number the run can reach.
	maxSeq := int64(math.Ceil(float64(c.Connections)*c.MessageRate*c.Duration.Seconds())) +
		int64(c.Connections)
	user := len(c.UsernamePrefix) + len(strconv.Itoa(c.Connections))
	if need := chat.HeaderSize(user, maxSeq, len("0123abcd")) + 1; c.MessageSize < need {
		return &UsageError{Flag: "--message-size", Msg: fmt.Sprintf(
			"%d bytes cannot hold a line's fields with %d connections at -r %g for %gs; "+
				"use at least %d", c.MessageSize, c.Connections, c.MessageRate,
			c.Duration.Seconds(), need)}
	}
	key, err := chat.ReadKey(c.KeyFile)
	if err != nil {
		return &UsageError{Flag: "--key-file", Msg: err.Error()}
	}
	c.Key = key
	return nil
}

// PerConnectionTarget returns the paced per-connection bandwidth in bits/s of the
// message stream, or of the lines in chat mode (0 when unpaced).
func (c *Config) PerConnectionTarget() float64 {
	switch {
	case c.Chat:
		return c.MessageRate * float64(c.MessageSize) * 8
	case c.BandwidthBps > 0:
		return c.BandwidthBps
	case c.MessageRate > 0:
		return c.MessageRate * float64(len(c.Message)) * 8
	}
	return 0
}

// Usage is the --help text.
const Usage = `usage: papaya-loadgen [options] host:port

A tcpkali-like TCP load generator: opens connections to host:port, sends a message
stream on each (paced per connection), reads and discards replies, and prints a JSON
summary to stdout at the end. Progress and errors go to stderr.

  -c, --connections N                  connections to open (default 1)
  -T, --duration D                     run time from the first connect attempt: 500ms, 10s,
                                       1m, 2h or bare seconds (default 10s)
  -m, --message TEXT                   message to send repeatedly
  -1, --first-message TEXT             message sent once on connect, before the stream
  -e, --unescape-message-args          expand \n \r \t \\ \xHH in messages
      --channel-bandwidth-upstream BW  per-connection bandwidth: kbps, Mbps, Gbps (bits/s)
                                       or kBps, MBps, GBps (bytes/s); decimal prefixes
  -r, --message-rate R                 messages per second per connection
      --connect-rate R                 new connections per second (default 100)
      --connect-timeout D              per-connection connect timeout (default 1s)
      --write-combine on|off           several messages per write (default on)
      --write-interval D|auto          time between writes on a paced connection; auto
                                       (default): about one MTU (1460 bytes) per write,
                                       but every 2ms to 50ms (papaya extension)
      --nagle on|off                   Nagle's algorithm (default: on, off with
                                       --write-combine off or --chat)
      --json PATH                      also write the summary to PATH
      --version                        print the version and exit
  -h, --help                           print this help and exit

Chat mode (papaya extension; the chat protocol of experiments/chat/PROTOCOL.md):
      --chat                           send the key, then chat lines at -r per connection,
                                       read every line delivered, measure delivery latency
      --key-file PATH                  the key: 128 printable ASCII characters (and
                                       optionally a newline); sent first on each connection
  -r, --message-rate R                 lines per second per connection (required)
      --message-size N                 bytes per line, newline included (default 64,
                                       at most 4096)
      --username-prefix P              connection i (from 1) sends as P<i> (default user)
      --drain D                        after -T, wait up to D for lines in flight
                                       (default 1s)
      Lines are "user7: t=<unix-ns> seq=<n> run=<id> xxx...\n". Nagle is off unless
      --nagle on; -m, -1 and --channel-bandwidth-upstream do not apply.

Exit status: 0 when the run completed (failed connections are reported in the summary),
1 when no connection could be opened, 2 for usage errors.
`
