package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuSample is the machine's and this process's CPU time at one moment, to tell
// whether a case was limited by the CPU (and by whose) or by waiting.
type cpuSample struct {
	at            time.Time
	machineBusy   time.Duration // all cores, every process: total minus idle and I/O wait
	processCPU    time.Duration // this process (the nodes and the benchmark's clients)
	postgresCPU   time.Duration // every process named postgres (backends, WAL writer, ...)
	natsCPU       time.Duration // every process named nats-server
	machineExists bool
}

// servicesCPU sums the CPU time of the processes named postgres and nats-server on
// this machine (0 where /proc cannot tell). A backend that exits between two samples
// takes its time with it; the nodes' pools keep theirs open while a case runs.
func servicesCPU() (postgres, nats time.Duration) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0
	}
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ... utime stime: comm may hold spaces, so split after ')'.
		open, closing := strings.IndexByte(string(data), '('), strings.LastIndexByte(string(data), ')')
		if open < 0 || closing < open {
			continue
		}
		comm := string(data[open+1 : closing])
		if comm != "postgres" && comm != "nats-server" {
			continue
		}
		fields := strings.Fields(string(data[closing+1:]))
		if len(fields) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(fields[11], 10, 64)
		stime, _ := strconv.ParseInt(fields[12], 10, 64)
		used := time.Duration(utime+stime) * time.Second / ticksPerSecond
		if comm == "postgres" {
			postgres += used
		} else {
			nats += used
		}
	}
	return postgres, nats
}

func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.processCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	s.postgresCPU, s.natsCPU = servicesCPU()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(fields) < 8 || fields[0] != "cpu" {
		return s
	}
	var total, idle int64
	for i, f := range fields[1:] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return s
		}
		if i < 8 {
			total += v
		}
		if i == 3 || i == 4 {
			idle += v
		}
	}
	s.machineBusy = time.Duration(total-idle) * time.Second / ticksPerSecond
	s.machineExists = true
	return s
}

// ticksPerSecond is USER_HZ, the unit of /proc's CPU times on Linux.
const ticksPerSecond = 100

// cpuUse describes the CPU used between two samples, in cores, and per operation
// when ops > 0.
func cpuUse(a, b cpuSample, ops int64) string {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return ""
	}
	out := "process " + strconv.FormatFloat((b.processCPU-a.processCPU).Seconds()/wall, 'f', 2, 64) + " cores"
	if a.machineExists && b.machineExists {
		out = "machine " + strconv.FormatFloat((b.machineBusy-a.machineBusy).Seconds()/wall, 'f', 2, 64) +
			"/" + strconv.Itoa(runtime.NumCPU()) + " cores busy, " + out
	}
	cores := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds()/wall, 'f', 2, 64) }
	if pg := b.postgresCPU - a.postgresCPU; pg > 0 {
		out += ", postgres " + cores(pg)
	}
	if nats := b.natsCPU - a.natsCPU; nats > 0 {
		out += ", nats-server " + cores(nats)
	}
	if ops > 0 && a.machineExists && b.machineExists {
		out += "; " + strconv.FormatInt((b.machineBusy-a.machineBusy).Microseconds()/ops, 10) + " µs machine CPU/op"
	}
	return out
}
