package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"termagent/agent"
	"termagent/hal/sim"
	"termagent/internal/faultfs"
	"termagent/protocol"
)

// storeOn points the rig's database at path.
func (r *rig) storeOn(path string) {
	r.t.Helper()
	b, err := os.ReadFile(r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	old := filepath.Join(r.dir, "termagent.db")
	s := strings.Replace(string(b), old, path, 1)
	if s == string(b) {
		r.t.Fatal("store path not found in the rig's config")
	}
	if err := os.WriteFile(r.cfg, []byte(s), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// downloadCard makes the server download a person with the printed card
// number 6547886 (EM4100 tag 01 00 63 E9 AE).
func downloadCard(t *testing.T, peer *protocol.Peer, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := protocol.NewRequest(protocol.ModDownloadPerson)
	req.PersonInfo = &protocol.PersonInfo{PersonID: id, PersonName: "Ann", CardNumber: "0006547886", Role: 1}
	if _, err := peer.Call(ctx, req); err != nil {
		t.Fatalf("download_person: %v", err)
	}
}

// A database on a file system that is read-only at start does not stop the
// door: the daemon starts (it used to exit 1 and loop under systemd),
// decides from the persons the database holds, keeps the record in memory,
// reports the fault, and stores and uploads the record once the file
// system is writable again.
func TestFaultReadOnlyStoreAtStart(t *testing.T) {
	if !faultfs.Run(t) {
		return
	}
	buildBinary(t)
	fs := faultfs.Mount(t, 64<<20)
	srv := startServer(t, "127.0.0.1:0")
	r := newRig(t, srv.addr, "modules:\n  retry_min: 50ms\n  retry_max: 200ms\n")
	r.storeOn(filepath.Join(fs.Dir, "termagent.db"))
	d := r.start()
	downloadCard(t, srv.nextPeer(), "p1")
	if code, _ := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	fs.ReadOnly()

	start := time.Now()
	d = r.start()
	srv.nextPeer()
	st := r.waitStatus("the database reported read-only", func(s agent.Status) bool {
		return s.DatabaseReadOnly != "" && s.Modules["database"].State == agent.ModuleFault
	})
	detect := time.Since(start)
	if st.Persons != 1 {
		t.Errorf("status persons = %d on the read-only database, want 1", st.Persons)
	}
	r.swipe("6547886")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.relay.Wait(ctx, func(s sim.RelayState) bool { return s.On }); err != nil {
		t.Fatalf("door not opened for an enrolled card on a read-only database: %v", err)
	}
	r.waitStatus("the record kept in memory", func(s agent.Status) bool { return s.RecordsPending == 1 })
	select {
	case up := <-srv.uploads:
		t.Fatalf("a record was uploaded while it could not be stored: %+v", up.AccessInfo)
	default:
	}

	fs.ReadWrite()
	writable := time.Now()
	up := srv.nextUpload()
	if ai := up.AccessInfo; ai == nil || ai.PersonID != "p1" || ai.OpenDoorType != 1 {
		t.Errorf("upload after recovery: %+v", ai)
	}
	recover := time.Since(writable)
	st = r.waitStatus("the database recovered and the outbox empty", func(s agent.Status) bool {
		return s.DatabaseReadOnly == "" && s.Modules["database"].State == agent.ModuleOK &&
			s.RecordsPending == 0 && s.OutboxDepth == 0 && s.Uploaded == 1
	})
	var fault, recovered bool
	for len(srv.events) > 0 {
		ev := <-srv.events
		fault = fault || ev.CommandType == 2 && strings.HasPrefix(ev.CommandValue, "database")
		recovered = recovered || ev.CommandType == 3 && ev.CommandValue == "database"
	}
	if !fault || !recovered {
		t.Errorf("device events: database fault %v, recovered %v; want both", fault, recovered)
	}
	if code, _ := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	t.Logf("FAULTROW\t%s\t%s\t%s", "store read-only at start",
		"starts anyway: decides from the persons it holds, door opens, record kept in memory (records_pending), database fault in status and as an event; stored and uploaded once writable",
		fmt.Sprintf("swipes 1, door opened 1, delivered %d, duplicates 0, lost 0, detect %v, recover %v",
			st.Uploaded, detect.Round(time.Millisecond), recover.Round(time.Millisecond)))
}
