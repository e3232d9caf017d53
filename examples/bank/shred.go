package bank

import (
	"strings"

	"github.com/ringleader-go/ringleader/eventstore/shred"
)

// HolderSubjectPrefix is put before an account number to name the account holder as
// a data subject ("account:A1") in the key table.
const HolderSubjectPrefix = "account:"

// ShredConfig returns the bank's crypto-shredding rules around keys (nil: no master
// key, so holder names are refused): AccountOpened.holder_name is personal data of
// the subject "account:<account_number>"; appending AccountHolderForgotten deletes
// that subject's key first; account snapshots are encrypted with it.
func ShredConfig(keys *shred.Keys) shred.Config {
	return shred.Config{
		Keys: keys,
		Rules: []shred.Rule{{
			EventType: "AccountOpened", SubjectField: "account_number", SubjectPrefix: HolderSubjectPrefix,
			Fields: []shred.Field{{Name: "holder_name"}},
		}},
		Forget: []shred.ForgetRule{{EventType: "AccountHolderForgotten", SubjectField: "account_number", SubjectPrefix: HolderSubjectPrefix}},
		SnapshotSubject: func(streamID string) (string, bool) {
			n, ok := strings.CutPrefix(streamID, AccountStreamPrefix)
			return HolderSubjectPrefix + n, ok
		},
	}
}
