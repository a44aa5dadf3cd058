#!/usr/bin/python3
"""Small .npy files written by NumPy itself, so LossKit's own .npy reader is tested against the
reference writer (every dtype LossKit reads, format versions 1.0/2.0/3.0, a Fortran-ordered and a
big-endian file it must reject). Output: src/test/resources/npy/. Needs Debian's python3-numpy."""
import os
import numpy as np

out = os.path.join(os.path.dirname(__file__), "..", "src", "test", "resources", "npy")
os.makedirs(out, exist_ok=True)
x = (np.arange(24, dtype=np.float64).reshape(6, 4) - 11.5) / 8.0   # exact in float32
y = np.array([0, 3, 1, 2, 3, 0])
np.save(os.path.join(out, "pred_f32.npy"), x.astype(np.float32))
np.save(os.path.join(out, "pred_f64.npy"), x)
np.save(os.path.join(out, "target_f32.npy"), (x[::-1] / 2).astype(np.float32))
np.save(os.path.join(out, "labels_i64.npy"), y.astype(np.int64))
np.save(os.path.join(out, "labels_i32.npy"), y.astype(np.int32))
np.save(os.path.join(out, "pred_fortran.npy"), np.asfortranarray(x.astype(np.float32)))
np.save(os.path.join(out, "pred_bigendian.npy"), x.astype(">f4"))
np.save(os.path.join(out, "pred_f16.npy"), x.astype(np.float16))
with open(os.path.join(out, "pred_v2.npy"), "wb") as f:
    np.lib.format.write_array(f, x.astype(np.float32), version=(2, 0))
with open(os.path.join(out, "pred_v3.npy"), "wb") as f:
    np.lib.format.write_array(f, x.astype(np.float32), version=(3, 0))
np.save(os.path.join(out, "scalar_f32.npy"), np.float32(1.5))
print("wrote", sorted(os.listdir(out)))
