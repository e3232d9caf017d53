package bank

import (
	"time"

	"github.com/ringleader-go/ringleader"
	"github.com/ringleader-go/ringleader/config"
	"github.com/ringleader-go/ringleader/handlers"
)

// TransferTimeoutSetting is the bank node's own setting (--transfer-timeout,
// RL_TRANSFER_TIMEOUT, file key transfer_timeout): how long a transfer may stay
// requested, not debited, before it expires and fails. Default 5m; 0: never.
const TransferTimeoutSetting = "transfer-timeout"

// App returns the bank as a Ringleader application: its router, the bank_accounts
// projection and the transfer process manager, its (empty) upcasters, its
// crypto-shredding rules and its transfer-timeout setting. cmd/node runs it:
//
//	func main() { node.Main(bank.App()) }
func App() ringleader.App {
	return ringleader.App{
		Name:     "bank",
		Router:   NewRouter(Config{}),
		Upcasts:  Upcasts(),
		Shred:    ShredConfig,
		Settings: []config.Setting{config.Duration(TransferTimeoutSetting, 5*time.Minute, "how long a transfer may stay undebited before it expires (0: never)")},
		Handlers: func(h ringleader.Host) ([]handlers.Registrant, error) {
			bh, err := Handlers(HandlersConfig{
				Dispatcher:      h.Commands,
				States:          h.ProcessStates,
				Scheduler:       h.Scheduler,
				TransferTimeout: h.Settings.Duration(TransferTimeoutSetting),
			})
			return bh.Registrants(), err
		},
	}
}
