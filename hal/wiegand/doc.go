// Package wiegand reads Wiegand card readers and keypads wired straight to
// two GPIO lines, D0 and D1, through the Linux GPIO character device.
//
// # Wire protocol
//
// Both lines idle high. Each bit is one short low pulse (typically 50–100 µs,
// some readers 400 µs): on D0 for a 0, on D1 for a 1, about 1–3 ms apart.
// A burst ends when the lines stay quiet for Config.Gap (default 25 ms;
// readers leave at least 50 ms between frames). Only falling edges count;
// the kernel stamps each one (CLOCK_MONOTONIC), so a burst is told from
// the next by those stamps even when this process was late reading them.
//
// Bursts the decoder understands (Decoder, Decode):
//
//   - 26 bits (HID H10301): P FC(8) CN(16) P: the first bit is even parity
//     over the first 12 data bits, the last odd parity over the last 12.
//   - 34 bits: P + 32 data bits + P, parity over 16 bits each side.
//   - 37 bits (HID H10304): P + 35 data bits + P; even parity over data
//     bits 1–18, odd over 18–35 (bit 18 is in both).
//   - 4 bits: one keypad key, the nibble 0–9, 10 '*', 11 '#', 12–15 'A'–'D'.
//   - 8 bits: one keypad key, the complement of the nibble then the nibble
//     (key 1 is 1110 0001); the complement is the check. 4-bit keys carry
//     no check (a 4-pulse glitch reads as a key): set keypads to 8 bits
//     where they offer it.
//
// Any other length, a parity or complement mismatch, is a read error: it is
// counted (Reader.Stats) and logged with its bit count, and never becomes a
// card number or a key. A card's payload (the data bits without parity,
// big-endian, right-aligned in (bits-2+7)/8 bytes) goes through
// hal/card's Format to make the server's card_number; the default is the
// 10-digit decimal of the low 32 bits (a W26 read of EM fob 0x0063E9AE is
// "0006547886").
//
// # Wiring
//
// Most readers run on 12 V and drive D0/D1 at 5 V: a 3.3 V SoC GPIO needs a
// level shifter (or a divider, or an opto-coupler) on each line; never wire
// 5 V data lines to a 3.3 V pin. Join the reader's ground to the board's.
// The lines are requested as inputs with the pull-up bias enabled.
//
// # Layers
//
// Decoder is pure (edges in, bursts out) and tested on recorded edge
// timelines. Reader runs it on a Lines source: CdevLines, the kernel's GPIO
// character device (one line request for D0 and D1, falling edges, kernel
// timestamps), or any other implementation of Lines in tests.
//
// Import rule: wiegand imports hal, hal/card and hal/internal/gpiofind (to
// find chips and lines by name) only; never agent, store or protocol.
package wiegand
