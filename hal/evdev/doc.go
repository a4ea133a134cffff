// Package evdev reads USB HID keyboard-wedge card readers, USB keypads and
// a door's contacts declared as gpio-keys through the Linux input event
// interface (/dev/input/eventN): CardReader, Keypad and DoorInputs.
//
// A keyboard-wedge reader enumerates as a keyboard and types the card
// number followed by Enter; a USB keypad types keys. Each key arrives as
// input_event records: EV_MSC/MSC_SCAN, EV_KEY code 1 (press), EV_SYN,
// EV_KEY code 0 (release), EV_SYN; value 2 is auto-repeat. The driver opens
// the device and grabs it (EVIOCGRAB) so the digits reach no console or UI.
//
// # Records
//
// struct input_event is {struct timeval; u16 type; u16 code; s32 value},
// in the process's ABI:
//
//   - 24 bytes on 64-bit processes (arm64, amd64): 8-byte seconds and
//     microseconds;
//   - 16 bytes on 32-bit processes (arm, 386): 4-byte seconds and
//     microseconds. A 32-bit process built with a 64-bit time_t gets the
//     same 16 bytes (the kernel sends the seconds as an unsigned 32-bit
//     __kernel_ulong_t, good until 2106), so Decode reads them unsigned;
//     so does a 32-bit process on a 64-bit kernel (the compat ABI).
//
// Config.EventSize overrides the choice (16 or 24); zero picks the running
// process's (NativeEventSize). Decode and Append are pure codecs over
// bytes, with golden vectors for both layouts.
//
// # Keys
//
// Card mode (CardReader): KEY_0–KEY_9, KEY_KP0–KEY_KP9 and KEY_NUMERIC_0–9
// are digits; KEY_A–KEY_F are hex digits; KEY_ENTER or KEY_KPENTER ends
// the number. Shift is ignored (readers set to AZERTY send shift+digit).
// A partial number is dropped after Config.KeyGap of silence, when it
// grows past 32 characters or when a key that is no digit arrives. When
// the kernel reports lost events (SYN_DROPPED), the number being typed is
// dropped whole, up to its Enter, so a number missing a digit is never
// delivered. A line whose length or alphabet fails Config.Line is refused
// (hal/card's line rules; then Config.Format makes the card_number).
//
// Keypad mode (Keypad): digits as above; KEY_KPASTERISK, KEY_NUMERIC_STAR
// and Shift+8 are '*'; KEY_NUMERIC_POUND and Shift+3 are '#'; KEY_ENTER and
// KEY_KPENTER are hal.KeyEnter; KEY_ESC is hal.KeyEscape; KEY_BACKSPACE and
// KEY_DELETE are hal.KeyBackspace; KEY_NUMERIC_A–D and KEY_A–KEY_D are
// 'A'–'D'. Plain numeric keypads have no '#' key: use Enter to end a PIN.
// Presses count, releases and auto-repeats do not. Keys are never logged.
//
// # Door inputs
//
// On an embedded board the door-position switch and the exit button are
// best declared in the device tree as gpio-keys: the kernel debounces them
// and reports them as input events, e.g.
//
//	gpio-keys {
//		compatible = "gpio-keys";
//		door {	/* NC reed contact to GND: closed door = low */
//			gpios = <&gpio 27 GPIO_ACTIVE_LOW>;
//			linux,input-type = <5>;	/* EV_SW */
//			linux,code = <0x10>;	/* SW_MACHINE_COVER: set = shut */
//			debounce-interval = <30>;
//		};
//		exit {	/* NO button to GND */
//			gpios = <&gpio 22 GPIO_ACTIVE_LOW>;
//			linux,code = <134>;	/* KEY_OPEN */
//			debounce-interval = <30>;
//		};
//	};
//
// DoorInputs reads them (those codes are its defaults; DoorConfig names
// others) and implements hal.DoorInputs beside any relay driver. On a
// character device it reads the switch's state at open (EVIOCGSW), so a
// door already open at start is reported.
//
// # Device names
//
// eventN numbers change between boots and plugs. Configure the udev name
// instead: /dev/input/by-id/usb-<Vendor>_<Product>-event-kbd (or the
// by-path name, which follows the USB port; gpio-keys appears as
// /dev/input/by-path/platform-gpio-keys-event). Reading needs root or the
// input group. An unplugged device reads ENODEV; the driver reopens the
// path with backoff and reports it through Health.
//
// # Testing
//
// The grab is refused (ENOTTY) on a FIFO or a plain file; the driver
// tolerates that for anything that is not a character device, so the real
// driver runs in tests against hal/sim's input_event stream on a FIFO.
//
// Import rule: evdev imports hal, hal/card and hal/serialport (its Backoff)
// only; never agent, store or protocol.
package evdev
