"""Frees what TF 2.15 leaks per EagerTensor on Python 3.11 (tensorflow#62551).

An EagerTensor is a C object whose Python base class gives it a "managed"
instance dict (CPython 3.11, `Py_TPFLAGS_MANAGED_DICT`): the interpreter
allocates the instance attributes' value array with the object, and the type's
`tp_dealloc` must free it. TF 2.15's `EagerTensor_dealloc`
(tensorflow/python/eager/pywrap_tensor.cc) frees the handle and calls
`tp_free` but never clears that dict, so every EagerTensor that dies leaves
its value array behind: 16 bytes for a tensor nobody set an attribute on
(measured here: `tf.constant(1.5)` 16.0 B per call, a `tf.function` called on
a NumPy array 31.4 B, after `malloc_trim`, over 200,000 calls). An actor
making ~200 batched policy calls a second lost ~1 MiB a minute to it
(benchmarks/results/soak.md).

`release` does for one tensor what a correct dealloc would do: it detaches the
instance dict through the C API (`_PyObject_GetDictPtr`, which first turns the
value array into a dict object and frees the array) and drops it. The tensor
stays valid (its data and shape live in the TFE handle, not in the dict); it
only loses Python attributes set on it, which is why callers release only
tensors they are about to drop. With it, the same loops grow by 0.00 B per
call.

Used by the actor (its policy call, its weight pull). Not by the learner:
releasing the learner step's batch and metrics tensors coincided with a
worse Catch run (0.68, 0.24, 0.46 over the last 100 episodes against 1.00,
0.98, 1.00, 0.98 without; benchmarks/results/soak.md, 2026-12-07) for a
reason not found, so it was taken out.

Where the interpreter is not CPython 3.11 (other versions lay the dict out
differently) or a type has no managed dict, `release` does nothing.
"""

import ctypes
import platform
import sys
from typing import Any

# Include/object.h of CPython 3.11.
_PY_TPFLAGS_MANAGED_DICT = 1 << 4

ENABLED = (platform.python_implementation() == 'CPython'
           and sys.version_info[:2] == (3, 11))

if ENABLED:
  _get_dict_ptr = ctypes.pythonapi._PyObject_GetDictPtr  # pylint: disable=protected-access
  _get_dict_ptr.argtypes = [ctypes.py_object]
  _get_dict_ptr.restype = ctypes.POINTER(ctypes.c_void_p)
  _decref = ctypes.pythonapi.Py_DecRef
  _decref.argtypes = [ctypes.c_void_p]
  _decref.restype = None


def release(*tensors: Any) -> None:
  """Frees each object's instance attributes now, since its dealloc will not.

  Call it on EagerTensors (or any objects) you are about to drop; an object
  of a type without a managed dict (NumPy arrays, None, ints) is left alone.

  Args:
    *tensors: objects whose instance attributes are no longer needed. After
      the call each has no instance attributes (its `__dict__` is empty); a
      tensor's value, dtype, shape and `.numpy()` are unchanged.
  """
  if not ENABLED:
    return
  for tensor in tensors:
    if not type(tensor).__flags__ & _PY_TPFLAGS_MANAGED_DICT:
      continue
    dict_ptr = _get_dict_ptr(tensor)
    if dict_ptr and dict_ptr[0]:
      instance_dict, dict_ptr[0] = dict_ptr[0], None
      _decref(instance_dict)
