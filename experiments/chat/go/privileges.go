package main

import (
	"errors"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// runAs is the user to switch to after binding, when started as root.
type runAs struct {
	change bool
	uid    int
	gid    int
	groups []int
	name   string
}

func lookUpUser(name string) *user.User {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil
		}
		fatal("cannot look up user '%s': %s", name, errText(err))
	}
	return u
}

func atoiOrFatal(text, what string) int {
	v, err := strconv.Atoi(text)
	if err != nil {
		fatal("bad %s '%s'", what, text)
	}
	return v
}

// resolveUser decides whom to run as, with the C server's rules
// (../c/privileges.h): as root, the named user or "papaya", never one with
// user ID 0; otherwise a named user must be the current one.
func resolveUser(name string) runAs {
	if os.Geteuid() != 0 {
		if name == "" {
			return runAs{}
		}
		u := lookUpUser(name)
		if u == nil {
			fatal("unknown user '%s'", name)
		}
		if atoiOrFatal(u.Uid, "user ID") != os.Geteuid() {
			fatal("cannot run as user '%s': only root can change user", name)
		}
		return runAs{}
	}

	lookFor := name
	if lookFor == "" {
		lookFor = defaultUser
	}
	u := lookUpUser(lookFor)
	if u == nil {
		if name != "" {
			fatal("unknown user '%s'", name)
		}
		fatal("started as root, and the default user '%s' does not exist: create it, "+
			"or name the user to run as with --user NAME (USER= in the config file)",
			defaultUser)
	}
	r := runAs{change: true, name: u.Username,
		uid: atoiOrFatal(u.Uid, "user ID"), gid: atoiOrFatal(u.Gid, "group ID")}
	if r.uid == 0 {
		fatal("refusing to serve clients as root: user '%s' has user ID 0; name an "+
			"unprivileged user with --user NAME", u.Username)
	}
	// The user's groups, as initgroups(3) sets them.
	ids, err := u.GroupIds()
	if err != nil {
		fatal("cannot look up the groups of user '%s': %s", u.Username, errText(err))
	}
	for _, id := range ids {
		r.groups = append(r.groups, atoiOrFatal(id, "group ID"))
	}
	return r
}

// dropPrivileges switches to r's user and groups (every thread: Go 1.16 and
// later) and checks that root privileges cannot be regained.
func dropPrivileges(r runAs) {
	if !r.change {
		return
	}
	if err := syscall.Setgroups(r.groups); err != nil {
		fatal("initgroups %s: %s", r.name, errText(err))
	}
	if err := syscall.Setgid(r.gid); err != nil {
		fatal("setgid %d: %s", r.gid, errText(err))
	}
	if err := syscall.Setuid(r.uid); err != nil {
		fatal("setuid %d: %s", r.uid, errText(err))
	}
	if syscall.Setuid(0) == nil || os.Geteuid() == 0 || os.Getuid() == 0 {
		fatal("could not drop root privileges")
	}
}
