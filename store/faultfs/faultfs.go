// Package faultfs gives tests real file-system faults: a small tmpfs whose
// size makes writes fail with ENOSPC, and that can be remounted read-only
// (EROFS) and back. Mounting needs root and a private mount namespace, so
// a test that uses it re-runs itself under `unshare -m` (Run); the mounts
// vanish with the namespace when the test process exits.
//
// Only tests import this package (the store's, the agent's and the
// daemon's fault tests).
package faultfs

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// insideEnv marks the re-run test process (inside the private namespace).
const insideEnv = "TERMAGENT_FAULTFS_INSIDE"

// Run reports whether the calling test should go on: true in the re-run
// process inside a private mount namespace. In the first process it re-runs
// the test (and only it) under `unshare -m`, relays its log lines (FAULTROW
// lines included) and its verdict, and returns false. It skips the test
// when not root or when unshare is unavailable.
func Run(t *testing.T) bool {
	t.Helper()
	if os.Getenv(insideEnv) == t.Name() {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs in a private mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1) for a private mount namespace")
	}
	if out, err := exec.Command("unshare", "-m", "true").CombinedOutput(); err != nil {
		t.Skipf("unshare -m is not allowed here: %v %s", err, out)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	name := t.Name()
	run := "^" + strings.ReplaceAll(name, "/", "$/^") + "$"
	args := []string{"-m", "--propagation", "private", exe, "-test.run=" + run, "-test.v", "-test.count=1"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), insideEnv+"="+name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line + "\n")
		if i := strings.Index(line, "FAULTROW\t"); i >= 0 {
			t.Log(line[i:])
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the test inside a private mount namespace failed (%v):\n%s", err, all.String())
	}
	if strings.Contains(all.String(), "--- SKIP") && !strings.Contains(all.String(), "--- PASS") {
		t.Skipf("skipped inside the namespace:\n%s", all.String())
	}
	return false
}

// FS is a tmpfs mounted for one test.
type FS struct {
	t   *testing.T
	Dir string
}

// Mount mounts a tmpfs of size bytes on a new directory (mode 0700) and
// unmounts it when the test ends. Call it only after Run returned true.
func Mount(t *testing.T, size int64) *FS {
	t.Helper()
	dir := t.TempDir()
	fs := &FS{t: t, Dir: dir}
	fs.mount("-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir)
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return fs
}

// ReadOnly remounts the file system read-only. It fails (EBUSY) while a
// process holds a file on it open for writing.
func (fs *FS) ReadOnly() { fs.t.Helper(); fs.mount("-o", "remount,ro", fs.Dir) }

// ReadWrite remounts the file system read-write.
func (fs *FS) ReadWrite() { fs.t.Helper(); fs.mount("-o", "remount,rw", fs.Dir) }

func (fs *FS) mount(args ...string) {
	fs.t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		fs.t.Fatalf("mount %v: %v: %s", args, err, out)
	}
}

// Fill writes a file of zeros named name until the file system is full
// (ENOSPC) and returns its path; remove it to free the space.
func (fs *FS) Fill(name string) string {
	fs.t.Helper()
	p := fs.Dir + "/" + name
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		fs.t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !strings.Contains(err.Error(), "no space") {
				fs.t.Fatalf("fill %s: %v", p, err)
			}
			// Fill the last partial blocks too.
			for n := len(buf) / 2; n > 0; n /= 2 {
				for {
					if _, err := f.Write(buf[:n]); err != nil {
						break
					}
				}
			}
			return p
		}
	}
}

// MountExt4 makes an ext4 image of size bytes, mounts it through a loop
// device with errors=remount-ro on a new directory, and unmounts it when
// the test ends. It skips the test when mkfs.ext4 or a loop device is
// missing. Call it only after Run returned true.
func MountExt4(t *testing.T, size int64) *FS {
	t.Helper()
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("needs mkfs.ext4")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("needs loop devices")
	}
	img := t.TempDir() + "/ext4.img"
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	dir := t.TempDir()
	fs := &FS{t: t, Dir: dir}
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", img, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a loop device here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return fs
}

// Abort makes an ext4 file system fail every write from now on, as the
// kernel does on an I/O error with errors=remount-ro, even with files open
// for writing (mount -o remount,abort). It cannot be made writable again
// without unmounting it.
func (fs *FS) Abort() { fs.t.Helper(); fs.mount("-o", "remount,abort", fs.Dir) }
