;; greet: a WASI command written by hand in WebAssembly text. Prints
;; "hello, NAME!" for each argument (or "hello, world!" without any) with
;; args_sizes_get, args_get and fd_write, and exits with the number of names.
;;
;;   caplet run samples/greet.wat alice bob
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; 0..16: scratch (argc, buf size, iovec, nwritten); 16: "hello, "; 32: "!\n"; 40: "world"
  (data (i32.const 16) "hello, ")
  (data (i32.const 32) "!\n")
  (data (i32.const 40) "world")
  (global $argv i32 (i32.const 1024))

  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 8) (local.get $ptr))
    (i32.store (i32.const 12) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 4))))

  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  (func $greet (param $name i32) (param $len i32)
    (call $write (i32.const 16) (i32.const 7))
    (call $write (local.get $name) (local.get $len))
    (call $write (i32.const 32) (i32.const 2)))

  (func (export "_start")
    (local $argc i32) (local $size i32) (local $i i32) (local $p i32)
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (local.set $argc (i32.load (i32.const 0)))
    (local.set $size (i32.load (i32.const 4)))
    ;; argv pointers at 1024, the strings after them; grow memory if they do not fit
    (if (i32.gt_u (i32.add (i32.add (i32.const 1024) (i32.mul (local.get $argc) (i32.const 4))) (local.get $size))
                  (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.div_u (i32.add (local.get $size) (i32.mul (local.get $argc) (i32.const 4))) (i32.const 65536)) (i32.const 1))))))
    (drop (call $args_get (global.get $argv) (i32.add (global.get $argv) (i32.mul (local.get $argc) (i32.const 4)))))
    (if (i32.le_u (local.get $argc) (i32.const 1))
      (then (call $greet (i32.const 40) (i32.const 5)) (call $proc_exit (i32.const 0))))
    (local.set $i (i32.const 1))
    (loop $each
      (local.set $p (i32.load (i32.add (global.get $argv) (i32.mul (local.get $i) (i32.const 4)))))
      (call $greet (local.get $p) (call $strlen (local.get $p)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $i) (local.get $argc))))
    (call $proc_exit (i32.sub (local.get $argc) (i32.const 1)))))
