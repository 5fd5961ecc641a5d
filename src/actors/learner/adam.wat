;; Adam over the learner's flat parameter vector in one pass (adam-kernel.ts runs it; compiled
;; to adam.wasm by `npm run build:wasm`). Per element, in float32 and in the order the former
;; ONNX graph and TensorFlow.js compute it:
;;   m ← β1·m + s1·g          s1 = (1 − β1)·clip
;;   v ← β2·v + s2·(g·g)      s2 = (1 − β2)·clip²
;;   p ← p − (m·k1) / (√v + k2)   k1 = lr·c1/√c2, k2 = ε/√c2, c = 1/(1 − βᵗ)
;; p, m, v and g are byte offsets of 16-byte-aligned float32 arrays of n elements; n is a
;; multiple of 4 (the caller pads with zeros, which stay zero), so every step is four lanes.
(module
  (memory (export "memory") 1)
  (func (export "adam")
    (param $p i32) (param $m i32) (param $v i32) (param $g i32) (param $n i32)
    (param $b1 f32) (param $b2 f32) (param $s1 f32) (param $s2 f32) (param $k1 f32) (param $k2 f32)
    (local $i i32) (local $end i32) (local $g4 v128) (local $m4 v128) (local $v4 v128)
    (local $vb1 v128) (local $vb2 v128) (local $vs1 v128) (local $vs2 v128)
    (local $vk1 v128) (local $vk2 v128)
    (local.set $vb1 (f32x4.splat (local.get $b1)))
    (local.set $vb2 (f32x4.splat (local.get $b2)))
    (local.set $vs1 (f32x4.splat (local.get $s1)))
    (local.set $vs2 (f32x4.splat (local.get $s2)))
    (local.set $vk1 (f32x4.splat (local.get $k1)))
    (local.set $vk2 (f32x4.splat (local.get $k2)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $g4 (v128.load (i32.add (local.get $g) (local.get $i))))
        (local.set $m4 (f32x4.add
          (f32x4.mul (local.get $vb1) (v128.load (i32.add (local.get $m) (local.get $i))))
          (f32x4.mul (local.get $vs1) (local.get $g4))))
        (local.set $v4 (f32x4.add
          (f32x4.mul (local.get $vb2) (v128.load (i32.add (local.get $v) (local.get $i))))
          (f32x4.mul (local.get $vs2) (f32x4.mul (local.get $g4) (local.get $g4)))))
        (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $m4))
        (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $v4))
        (v128.store (i32.add (local.get $p) (local.get $i))
          (f32x4.sub
            (v128.load (i32.add (local.get $p) (local.get $i)))
            (f32x4.div
              (f32x4.mul (local.get $m4) (local.get $vk1))
              (f32x4.add (f32x4.sqrt (local.get $v4)) (local.get $vk2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $next))))
)
