// The Python face of Surtitle's CPU kernels: one extension module, built by core/native.py.

#include <torch/extension.h>

at::Tensor int4_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scales);
at::Tensor ring_attention(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values,
                          const at::Tensor& mask, const std::optional<at::Tensor>& key_scales,
                          const std::optional<at::Tensor>& value_scales);
at::Tensor few_rows_linear(const at::Tensor& x, const at::Tensor& w);
at::Tensor nearest_centroids(const at::Tensor& x, const at::Tensor& table, const at::Tensor& scales,
                             const at::Tensor& l1, const at::Tensor& norms, const at::Tensor& centroids);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("int4_linear", &int4_linear, "int4 weights times int8-quantized float rows");
  m.def("ring_attention", &ring_attention, "one query step over a bfloat16 or int8 key/value ring",
        py::arg("q"), py::arg("keys"), py::arg("values"), py::arg("mask"), py::arg("key_scales") = py::none(),
        py::arg("value_scales") = py::none());
  m.def("few_rows_linear", &few_rows_linear, "a few float32 rows times a float32 weight matrix");
  m.def("nearest_centroids", &nearest_centroids, "a few rows' nearest codebook centroids, via an int8 copy");
}
