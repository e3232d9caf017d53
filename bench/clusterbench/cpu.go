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
	machineExists bool
}

func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.processCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
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
	const ticksPerSecond = 100 // USER_HZ on Linux
	s.machineBusy = time.Duration(total-idle) * time.Second / ticksPerSecond
	s.machineExists = true
	return s
}

// cpuUse describes the CPU used between two samples, in cores.
func cpuUse(a, b cpuSample) string {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return ""
	}
	out := "process " + strconv.FormatFloat((b.processCPU-a.processCPU).Seconds()/wall, 'f', 2, 64) + " cores"
	if a.machineExists && b.machineExists {
		out = "machine " + strconv.FormatFloat((b.machineBusy-a.machineBusy).Seconds()/wall, 'f', 2, 64) +
			"/" + strconv.Itoa(runtime.NumCPU()) + " cores busy, " + out
	}
	return out
}
