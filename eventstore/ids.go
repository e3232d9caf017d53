package eventstore

import (
	"strconv"

	"github.com/google/uuid"
)

// commandEventNamespace is the name space of CommandEventID's name-based UUIDs.
var commandEventNamespace = uuid.MustParse("8f0b3c52-4d0e-4a59-9b7e-0d6a1c2e5f31")

// CommandEventID is the id of the index-th (0-based) event a command with id
// commandID appends to streamID: a name-based UUID (version 5) of the three, the same
// each time the command is executed again. Stores keep event ids unique, so a
// repeated command's append fails with ErrDuplicateEventID instead of storing its
// events twice, whatever state it was decided on.
func CommandEventID(streamID, commandID string, index int) uuid.UUID {
	// Lengths first, so that no two (stream, command) pairs give the same name.
	name := strconv.Itoa(len(streamID)) + ":" + streamID + strconv.Itoa(len(commandID)) + ":" + commandID + "#" + strconv.Itoa(index)
	return uuid.NewSHA1(commandEventNamespace, []byte(name))
}
