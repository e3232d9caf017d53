// Package shop is the second example application of Ringleader, written only
// against its public API (it is a Go module of its own, outside the runtime's
// module path, so the runtime's internal packages are out of its reach).
//
// Customers place orders of several lines; each line reserves stock of one SKU.
// Two aggregate types take part: an Order (stream "order-<id>") and the Inventory
// of one SKU (stream "stock-<sku>"). The fulfilment process manager reserves every
// line of a placed order, confirms the order once all are reserved, and, when a
// line is out of stock, releases what it reserved and cancels the order. An order
// not confirmed within the reservation-timeout setting expires (a scheduled
// command), and its reservations are released. The shop projection keeps the stock
// levels and the orders' status in PostgreSQL. OrderPlaced changed shape once: an
// upcaster turns its version 1 (one SKU) into version 2 (lines).
//
// App returns all of it; cmd/shop is `node.Main(shop.App())`. Everything in the
// package is safe for concurrent use: the aggregates are driven by the runtime,
// which gives each instance one goroutine.
package shop
