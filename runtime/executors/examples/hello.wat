;; hello: the demo's WASI job. Prints a greeting, then each argument and each environment variable on its own line
;; to stdout, one line to stderr, and exits with the code named by an "exit=N" argument (0 without one).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0..15: iovec and nwritten; 16..31: sizes; 64..255: strings; from 1024: argv and environ (grown on demand)
  (memory (export "memory") 1)
  (data (i32.const 64) "hello from wasm\0a\00")
  (data (i32.const 96) "arg: \00")
  (data (i32.const 104) "env: \00")
  (data (i32.const 112) "\0a\00")
  (data (i32.const 120) "hello on stderr\0a\00")
  (data (i32.const 144) "exit=\00")

  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  (func $puts (param $fd i32) (param $p i32)
    (call $write (local.get $fd) (local.get $p) (call $strlen (local.get $p))))

  ;; Grows the memory until it holds $end bytes.
  (func $ensure (param $end i32)
    (local $have i32)
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.div_u (i32.sub (local.get $end) (local.get $have)) (i32.const 65536)) (i32.const 1)))
                    (i32.const -1))
          (then unreachable)))))

  ;; 1 when the string at $s starts with the string at $prefix.
  (func $starts_with (param $s i32) (param $prefix i32) (result i32)
    (block $no
      (loop $next
        (if (i32.eqz (i32.load8_u (local.get $prefix))) (then (return (i32.const 1))))
        (br_if $no (i32.ne (i32.load8_u (local.get $s)) (i32.load8_u (local.get $prefix))))
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (local.set $prefix (i32.add (local.get $prefix) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; The decimal number at $p (its digits up to the first non-digit).
  (func $atoi (param $p i32) (result i32)
    (local $n i32) (local $c i32)
    (block $done
      (loop $next
        (local.set $c (i32.sub (i32.load8_u (local.get $p)) (i32.const 48)))
        (br_if $done (i32.gt_u (local.get $c) (i32.const 9)))
        (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10)) (local.get $c)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (local.get $n))

  ;; Prints "<label><string>\n" for the strings $from..$count-1 of the pointer array at $ptrs.
  (func $print_all (param $label i32) (param $ptrs i32) (param $from i32) (param $count i32)
    (local $i i32)
    (local.set $i (local.get $from))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (call $puts (i32.const 1) (local.get $label))
        (call $puts (i32.const 1) (i32.load (i32.add (local.get $ptrs) (i32.mul (local.get $i) (i32.const 4)))))
        (call $puts (i32.const 1) (i32.const 112))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))

  ;; N from the last "exit=N" argument, else 0.
  (func $exit_code (param $argv i32) (param $argc i32) (result i32)
    (local $i i32) (local $s i32) (local $code i32)
    (local.set $i (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $argc)))
        (local.set $s (i32.load (i32.add (local.get $argv) (i32.mul (local.get $i) (i32.const 4)))))
        (if (call $starts_with (local.get $s) (i32.const 144))
          (then (local.set $code (call $atoi (i32.add (local.get $s) (i32.const 5))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $code))

  (func (export "_start")
    (local $argc i32) (local $argv i32) (local $argbuf i32) (local $envc i32) (local $envp i32) (local $envbuf i32)
    (call $puts (i32.const 1) (i32.const 64))
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $environ_sizes_get (i32.const 24) (i32.const 28)))
    (local.set $argc (i32.load (i32.const 16)))
    (local.set $envc (i32.load (i32.const 24)))
    (local.set $argv (i32.const 1024))
    (local.set $argbuf (i32.add (local.get $argv) (i32.mul (local.get $argc) (i32.const 4))))
    ;; environ's pointers start at the next 4-byte boundary after the argument strings
    (local.set $envp (i32.and (i32.add (i32.add (local.get $argbuf) (i32.load (i32.const 20))) (i32.const 3)) (i32.const -4)))
    (local.set $envbuf (i32.add (local.get $envp) (i32.mul (local.get $envc) (i32.const 4))))
    (call $ensure (i32.add (local.get $envbuf) (i32.load (i32.const 28))))
    (drop (call $args_get (local.get $argv) (local.get $argbuf)))
    (drop (call $environ_get (local.get $envp) (local.get $envbuf)))
    (call $print_all (i32.const 96) (local.get $argv) (i32.const 1) (local.get $argc))
    (call $print_all (i32.const 104) (local.get $envp) (i32.const 0) (local.get $envc))
    (call $puts (i32.const 2) (i32.const 120))
    (call $proc_exit (call $exit_code (local.get $argv) (local.get $argc))))
)
