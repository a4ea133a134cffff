package agent

import (
	"context"
	"time"

	"termagent/store"
)

// Settings is the part of the store that keeps the device info.
type Settings interface {
	DeviceInfo(ctx context.Context) (store.Settings, error)
	SeedDeviceInfo(ctx context.Context, seed store.Settings) (store.Settings, error)
	UpdateDeviceInfo(ctx context.Context, fn func(*store.Settings) error) (store.Settings, error)
	RevertServer(ctx context.Context) (store.Settings, error)
	ConfirmServer(ctx context.Context) (store.Settings, error)
}

// Persons is the part of the store that keeps persons and their bindings
// to the modules.
type Persons interface {
	PersonByCard(ctx context.Context, card string) (store.Person, error)
	PersonByFingerSlot(ctx context.Context, slot int) (store.Person, error)
	PersonByFaceUser(ctx context.Context, userID int) (store.Person, error)
	Biometric(ctx context.Context, id string, k store.Kind) (*store.Biometric, error)
	EachPerson(ctx context.Context, fn func(store.Person) error) error
	CountPersons(ctx context.Context) (int, error)
	BeginPerson(ctx context.Context, id string) (*store.PersonTx, error)
	DeletePerson(ctx context.Context, id string) (store.Person, error)
}

// Outbox is the part of the store that keeps access records until the
// server acknowledged them.
type Outbox interface {
	Enqueue(ctx context.Context, rec store.Record) (store.Record, error)
	EnqueueHeld(ctx context.Context, rec store.Record, hold time.Duration) (store.Record, error)
	Release(ctx context.Context, ids ...int64) error
	Peek(ctx context.Context, n int) ([]store.Record, error)
	Ack(ctx context.Context, ids ...int64) error
	Nack(ctx context.Context, id int64, nextTry time.Time, reason string) (bool, error)
	Wake() <-chan struct{}
	OutboxStats(ctx context.Context) (store.OutboxStats, error)
}

// Store is everything the agent needs from the database; *store.DB
// implements it.
type Store interface {
	Settings
	Persons
	Outbox
}

var _ Store = (*store.DB)(nil)

// degradable is implemented by a store that opens read-only when its file
// system refuses writes, and can be made writable again (*store.DB).
type degradable interface {
	Writable() (bool, string)
	MakeWritable(ctx context.Context) error
}

// recoverable is implemented by a store that reports replacing a damaged
// database at open (*store.DB).
type recoverable interface {
	Recovery() (store.Recovery, bool)
}

// quarantineRetrier is implemented by an outbox that can take quarantined
// records back (*store.DB).
type quarantineRetrier interface {
	RetryQuarantined(ctx context.Context) (int, error)
	Unquarantine(ctx context.Context) (int, error)
}

var (
	_ degradable        = (*store.DB)(nil)
	_ recoverable       = (*store.DB)(nil)
	_ quarantineRetrier = (*store.DB)(nil)
)
