package scripts

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runScript runs a shell script of this directory with args and returns its
// combined output.
func runScript(t *testing.T, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", append([]string{script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPostBuildInittab: the image post-build step adds termagent's line to
// a tree's inittab once, and leaves a tree without an inittab without one
// (a one-line inittab would replace BusyBox's built-in default).
func TestPostBuildInittab(t *testing.T) {
	with := t.TempDir()
	if err := os.MkdirAll(filepath.Join(with, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	inittab := "::sysinit:/etc/init.d/rcS\nconsole::respawn:/sbin/getty -L console 0 vt100"
	if err := os.WriteFile(filepath.Join(with, "etc/inittab"), []byte(inittab), 0o644); err != nil {
		t.Fatal(err)
	}
	mdev := "ttyS[0-9]* root:root 660\n"
	if err := os.WriteFile(filepath.Join(with, "etc/mdev.conf"), []byte(mdev), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		runScript(t, "image/post-build.sh", with)
	}
	want := inittab + "\n::respawn:/etc/init.d/termagent run\n"
	if got := readFile(t, filepath.Join(with, "etc/inittab")); got != want {
		t.Errorf("inittab after two runs:\n%q\nwant:\n%q", got, want)
	}
	// termagent's mdev lines go first (mdev takes the first match), once.
	got := readFile(t, filepath.Join(with, "etc/mdev.conf"))
	if !strings.HasPrefix(got, "# termagent:") || !strings.HasSuffix(got, mdev) || strings.Count(got, "# termagent:") != 1 {
		t.Errorf("mdev.conf after two runs:\n%s", got)
	}

	without := t.TempDir()
	out := runScript(t, "image/post-build.sh", without)
	if _, err := os.Stat(filepath.Join(without, "etc/inittab")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("post-build.sh created an inittab in a tree without one (%v)", err)
	}
	if !strings.Contains(out, "no /etc/inittab") {
		t.Errorf("post-build.sh did not warn about the missing inittab:\n%s", out)
	}
}

// TestUsersTable: the users-table line (Buildroot's makeusers format) gives
// the test image the user termagent in dialout, gpio and input, once.
func TestUsersTable(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\ndialout:x:20:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	table := readFile(t, "image/users.table")
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, "sh", "image/users-table.sh", root)
		cmd.Stdin = strings.NewReader(table)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("users-table.sh: %v\n%s", err, out)
		}
	}
	passwd := readFile(t, filepath.Join(root, "etc/passwd"))
	if want := "termagent:x:100:100:termagent terminal agent:/var/lib/termagent:/sbin/nologin\n"; strings.Count(passwd, "\ntermagent:") != 1 || !strings.Contains(passwd, want) {
		t.Errorf("passwd:\n%s\nwant the line %q once", passwd, want)
	}
	group := readFile(t, filepath.Join(root, "etc/group"))
	for _, want := range []string{"dialout:x:20:termagent\n", "termagent:x:100:\n", "gpio:x:101:termagent\n", "input:x:102:termagent\n"} {
		if !strings.Contains(group, want) {
			t.Errorf("group has no line %q:\n%s", want, group)
		}
	}
}

// TestRootfsTarball: make rootfs's tarball holds what an image needs, root
// relative, with the modes install.sh gives them.
func TestRootfsTarball(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar")
	}
	dist := t.TempDir()
	bin := filepath.Join(dist, "linux-amd64", "termagent")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "rootfs.sh", "amd64", dist, "v9.9.9").CombinedOutput()
	if err != nil {
		t.Fatalf("rootfs.sh: %v\n%s", err, out)
	}
	list, err := exec.CommandContext(ctx, "tar", "-tvzf", filepath.Join(dist, "termagent-rootfs-v9.9.9-linux-amd64.tar.gz")).CombinedOutput()
	if err != nil {
		t.Fatalf("tar: %v\n%s", err, list)
	}
	for _, want := range []string{
		"-rwxr-xr-x 0/0 ./usr/bin/termagent",
		"-rw-r--r-- 0/0 ./etc/termagent/termagent.yaml",
		"-rwxr-xr-x 0/0 ./etc/init.d/termagent",
		"-rw-r--r-- 0/0 ./usr/lib/systemd/system/termagent.service",
		"lrwxrwxrwx 0/0 ./etc/systemd/system/multi-user.target.wants/termagent.service",
		"-rw-r--r-- 0/0 ./etc/udev/rules.d/99-termagent.rules",
		"-rw-r--r-- 0/0 ./usr/lib/sysusers.d/termagent.conf",
		"drwx------ 0/0 ./var/lib/termagent/",
		"-rw-r--r-- 0/0 ./usr/share/termagent/users.table",
		"-rw-r--r-- 0/0 ./usr/share/termagent/mdev.conf",
		"-rwxr-xr-x 0/0 ./usr/share/termagent/post-build.sh",
	} {
		f := strings.Fields(want)
		found := false
		for _, line := range strings.Split(string(list), "\n") {
			g := strings.Fields(line)
			if len(g) >= 6 && g[0] == f[0] && g[1] == f[1] && g[5] == f[2] {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("rootfs tarball has no %q:\n%s", want, list)
		}
	}
	if strings.Contains(string(list), "etc/inittab") {
		t.Errorf("rootfs tarball carries an inittab (it would replace the image's):\n%s", list)
	}
	// The init script and the unit run the binary where the tarball puts it.
	script, err := exec.CommandContext(ctx, "tar", "-xzOf", filepath.Join(dist, "termagent-rootfs-v9.9.9-linux-amd64.tar.gz"), "./etc/init.d/termagent").Output()
	if err != nil || !strings.Contains(string(script), "BIN=${TERMAGENT_BIN:-/usr/bin/termagent}") {
		t.Errorf("init script does not run /usr/bin/termagent (%v)", err)
	}
}
