// The Python face of Surtitle's CPU kernels: one extension module, built by core/native.py.

#include <torch/extension.h>

at::Tensor int4_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scales);
at::Tensor ring_attention(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                          const at::Tensor& mask);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("int4_linear", &int4_linear, "int4 weights times int8-quantized float rows");
  m.def("ring_attention", &ring_attention, "one query step over a bfloat16 key/value ring");
}
