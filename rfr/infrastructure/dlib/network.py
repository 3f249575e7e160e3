"""Generic reader of a serialised dlib DNN (shared/spec/DLIB_MODEL_FORMAT.md, sections 2.5, 2.6).

The file gives the layer sequence and every parameter, but not which tag a skip or an
add_prev refers to: that lives in the C++ type. So this module only recovers what the file
holds, in execution order (input first), and leaves the wiring to a caller that knows the
architecture and checks the parsed sequence against it.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from rfr.infrastructure.dlib.serialization import AliasTensor, DlibFormatError, DlibReader

# Wrapper versions seen in the files (2.5): a tag or skip writes only its version.
_TAG_OR_SKIP_VERSION = 1
_LAYER_VERSION = 2
_INPUT_LAYER_VERSION = 3


# -- layers -------------------------------------------------------------------------------
@attrs.frozen(eq=False)
class Conv:
    """Cross-correlation with symmetric zero padding; weights are OIHW, as ONNX wants them."""

    name: str
    filters: np.ndarray
    biases: np.ndarray | None
    stride: tuple[int, int]
    padding: tuple[int, int]
    fused_relu: bool = False

    @property
    def num_filters(self) -> int:
        return int(self.filters.shape[0])

    @property
    def kernel(self) -> tuple[int, int]:
        return (int(self.filters.shape[2]), int(self.filters.shape[3]))


@attrs.frozen(eq=False)
class Affine:
    """y = gamma * x + beta; a stored training-form batch norm arrives here already folded."""

    name: str
    gamma: np.ndarray
    beta: np.ndarray
    conv_mode: bool
    disabled: bool = False


@attrs.frozen
class Relu:
    name: str
    disabled: bool = False


@attrs.frozen
class Pool:
    """Max or average pool; a 0x0 window means the whole input (global pooling)."""

    name: str
    kind: str
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def is_global(self) -> bool:
        return self.window == (0, 0)


@attrs.frozen
class AddPrev:
    name: str


@attrs.frozen(eq=False)
class FullyConnected:
    """y = x . W (+ b) with W of shape (num_inputs, num_outputs) and x the flattened input."""

    name: str
    weights: np.ndarray
    biases: np.ndarray | None


Layer = Conv | Affine | Relu | Pool | AddPrev | FullyConnected


@attrs.frozen
class InputLayer:
    """The input layer: channel means (RGB) and, depending on its type, size or pyramid padding."""

    name: str
    mean_rgb: tuple[float, float, float]
    size: tuple[int, int] | None = None
    pyramid_padding: int | None = None
    pyramid_outer_padding: int | None = None


@attrs.frozen
class Loss:
    """The loss layer's name and its settings, as plain values keyed by their dlib meaning."""

    name: str
    settings: dict[str, object]


@attrs.frozen
class StackEntry:
    """One entry of the layer stack: an add_layer with its layer, or a tag/skip (layer None).

    Tags and skips are indistinguishable in the file, hence one marker for both.
    """

    layer: Layer | None

    @property
    def is_tag_or_skip(self) -> bool:
        return self.layer is None


@attrs.frozen
class ParsedNetwork:
    loss: Loss
    input: InputLayer
    stack: tuple[StackEntry, ...]  # execution order: the entry just above the input first

    @property
    def layers(self) -> list[Layer]:
        return [entry.layer for entry in self.stack if entry.layer is not None]

    @property
    def parameter_count(self) -> int:
        total = 0
        for layer in self.layers:
            if isinstance(layer, Conv | FullyConnected):
                arrays = [layer.filters if isinstance(layer, Conv) else layer.weights, layer.biases]
            elif isinstance(layer, Affine):
                arrays = [layer.gamma, layer.beta]
            else:
                arrays = []
            total += sum(a.size for a in arrays if a is not None)
        return total


# -- entry point --------------------------------------------------------------------------
def parse_network(reader: DlibReader) -> ParsedNetwork:
    """Read one whole network (loss, wrappers, input, layer payloads) from ``reader``.

    The caller decides whether the file must end here (``reader.expect_end()``).
    """
    reader.expect_int(1, "add_loss_layer version")
    loss = _read_loss(reader)
    versions = _read_wrapper_versions(reader)
    input_layer = _read_input(reader)
    # Payloads come innermost first, and only for add_layers.
    entries: list[StackEntry] = []
    for version in reversed(versions):
        if version == _TAG_OR_SKIP_VERSION:
            entries.append(StackEntry(None))
            continue
        layer = _read_layer(reader)
        _read_add_layer_state(reader, version)
        entries.append(StackEntry(layer))
    return ParsedNetwork(loss=loss, input=input_layer, stack=tuple(entries))


def _read_wrapper_versions(reader: DlibReader) -> list[int]:
    versions: list[int] = []
    while not _input_name_follows(reader):
        start = reader.pos
        version = reader.read_int()
        if version not in (_TAG_OR_SKIP_VERSION, _LAYER_VERSION, _INPUT_LAYER_VERSION):
            raise DlibFormatError(f"unsupported layer wrapper version {version} at {start}")
        if versions and versions[-1] == _INPUT_LAYER_VERSION:
            raise DlibFormatError(f"layer wrapper at {start} found below the input-level layer")
        versions.append(version)
    if not versions or versions[-1] != _INPUT_LAYER_VERSION:
        raise DlibFormatError("the innermost add_layer must be the input-level form (version 3)")
    return versions


def _input_name_follows(reader: DlibReader) -> bool:
    # A version integer is `01 0v`; the input layer's name is `01 len` then "input...".
    head = reader.peek(7)
    if len(head) < 7:
        raise DlibFormatError(f"end of file at {reader.pos} while reading layer wrapper versions")
    return head[0] == 0x01 and head[1] > 3 and head[2:7] == b"input"


def _read_add_layer_state(reader: DlibReader, version: int) -> None:
    # this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_input_disabled
    for _ in range(3):
        reader.read_bool()
    _read_empty_or_any_tensor(reader)  # x_grad
    _read_empty_or_any_tensor(reader)  # cached_output
    _read_empty_or_any_tensor(reader)  # params_grad, or grad_final for the input-level form
    if version == _INPUT_LAYER_VERSION:
        reader.expect_int(1, "sample_expansion_factor")


def _read_empty_or_any_tensor(reader: DlibReader) -> None:
    # Training state: inference ignores it whatever it holds.
    reader.read_tensor()


# -- loss and input -----------------------------------------------------------------------
def _read_loss(reader: DlibReader) -> Loss:
    name = reader.expect_string("loss_metric_", "loss_metric_2", "loss_mmod_")
    if name == "loss_metric_":
        return Loss(name, {"margin": 0.1, "dist_thresh": 0.75})
    if name == "loss_metric_2":
        return Loss(name, {"margin": reader.read_float(), "dist_thresh": reader.read_float()})
    return Loss(name, _read_mmod_options(reader))


def _read_mmod_options(reader: DlibReader) -> dict[str, object]:
    start = reader.pos
    version = reader.read_int()
    if not 1 <= version <= 4:
        raise DlibFormatError(f"unsupported mmod_options version {version} at {start}")
    settings: dict[str, object] = {"version": version}
    if version == 1:
        width, height = reader.read_uint(), reader.read_uint()
        settings["detector_windows"] = [(width, height, "")]
    else:

        def read_window() -> tuple[int, int, str]:
            window_version = reader.read_int()
            if window_version not in (1, 2):
                raise DlibFormatError(f"unsupported detector window version {window_version}")
            width, height = reader.read_uint(), reader.read_uint()
            label = reader.read_string() if window_version == 2 else ""
            return (width, height, label)

        settings["detector_windows"] = reader.read_vector(read_window)
    settings["loss_per_false_alarm"] = reader.read_float()
    settings["loss_per_missed_target"] = reader.read_float()
    settings["truth_match_iou_threshold"] = reader.read_float()
    settings["overlaps_nms"] = (reader.read_float(), reader.read_float())
    settings["overlaps_ignore"] = (reader.read_float(), reader.read_float())
    settings["assume_image_pyramid"] = True
    settings["use_bounding_box_regression"] = False
    if version >= 3:
        settings["assume_image_pyramid"] = _read_raw_byte(reader) != 0
    if version >= 4:
        settings["use_bounding_box_regression"] = reader.read_bool()
        settings["bbr_lambda"] = reader.read_float()
    return settings


def _read_raw_byte(reader: DlibReader) -> int:
    # uint8_t is written as one raw byte, not in the integer format (2.3).
    byte = reader.peek(1)
    if not byte:
        raise DlibFormatError(f"unexpected end of file at {reader.pos} (wanted 1 byte)")
    reader.pos += 1
    return byte[0]


def _read_input(reader: DlibReader) -> InputLayer:
    name = reader.expect_string(
        "input_rgb_image_sized", "input_rgb_image_pyramid", "input_rgb_image_pyramid2"
    )
    mean = (reader.read_float(), reader.read_float(), reader.read_float())
    if name == "input_rgb_image_sized":
        return InputLayer(name, mean, size=(reader.read_uint(), reader.read_uint()))
    if name == "input_rgb_image_pyramid2":
        return InputLayer(
            name, mean, pyramid_padding=reader.read_uint(), pyramid_outer_padding=reader.read_uint()
        )
    # The old pyramid input implies the paddings its successor stores.
    return InputLayer(name, mean, pyramid_padding=10, pyramid_outer_padding=11)


# -- layer payloads -----------------------------------------------------------------------
def _read_layer(reader: DlibReader) -> Layer:
    start = reader.pos
    name = reader.read_string()
    if name in ("con_4", "con_5", "con_6"):
        return _read_conv(reader, name)
    if name in ("affine_", "affine_2"):
        return _read_affine(reader, name)
    if name in ("bn_con2", "bn_fc2"):
        return _read_batch_norm(reader, name)
    if name == "relu_":
        return Relu(name)
    if name == "relu_2":
        return Relu(name, disabled=reader.read_bool())
    if name in ("max_pool_2", "avg_pool_2"):
        window = (reader.read_int(), reader.read_int())
        stride = (reader.read_int(), reader.read_int())
        padding = (reader.read_int(), reader.read_int())
        return Pool(name, "max" if name.startswith("max") else "avg", window, stride, padding)
    if name == "add_prev_":
        return AddPrev(name)
    if name in ("fc_2", "fc_3"):
        return _read_fc(reader, name)
    raise DlibFormatError(f"unsupported layer {name!r} at {start}")


def _read_multipliers(reader: DlibReader) -> None:
    # learning-rate and weight-decay multipliers: training only.
    for _ in range(4):
        reader.read_float()


def _slices(params: np.ndarray, *aliases: AliasTensor) -> list[np.ndarray]:
    flat = params.reshape(-1)
    out, offset = [], 0
    for alias in aliases:
        out.append(flat[offset : offset + alias.size].reshape(alias.n, alias.k, alias.nr, alias.nc))
        offset += alias.size
    return out


def _read_conv(reader: DlibReader, name: str) -> Conv:
    params = reader.read_tensor()
    num_filters = reader.read_int()
    kernel = (reader.read_int(), reader.read_int())
    stride = (reader.read_int(), reader.read_int())
    padding = (reader.read_int(), reader.read_int())
    filters_alias = reader.read_alias_tensor()
    biases_alias = reader.read_alias_tensor()
    _read_multipliers(reader)
    use_bias = reader.read_bool() if name in ("con_5", "con_6") else True
    use_relu = reader.read_bool() if name == "con_6" else False
    if (filters_alias.n, filters_alias.nr, filters_alias.nc) != (num_filters, *kernel):
        raise DlibFormatError(f"{name}: filter alias {filters_alias} disagrees with {num_filters}x{kernel}")
    aliases = (filters_alias, biases_alias) if use_bias else (filters_alias,)
    expected = sum(a.size for a in aliases)
    if params.size != expected:
        raise DlibFormatError(f"{name}: params hold {params.size} values, aliases need {expected}")
    parts = _slices(params, *aliases)
    biases = parts[1].reshape(-1).copy() if use_bias else None
    return Conv(name, parts[0].copy(), biases, stride, padding, use_relu)


def _read_affine(reader: DlibReader, name: str) -> Affine:
    params = reader.read_tensor()
    gamma_alias = reader.read_alias_tensor()
    beta_alias = reader.read_alias_tensor()
    mode = reader.read_int()
    disabled = reader.read_bool() if name == "affine_2" else False
    if mode not in (0, 1):
        raise DlibFormatError(f"{name}: unknown mode {mode}")
    if params.size != gamma_alias.size + beta_alias.size:
        raise DlibFormatError(f"{name}: params hold {params.size} values, aliases need more or fewer")
    gamma, beta = _slices(params, gamma_alias, beta_alias)
    return Affine(name, gamma.copy(), beta.copy(), conv_mode=mode == 0, disabled=disabled)


def _read_batch_norm(reader: DlibReader, name: str) -> Affine:
    params = reader.read_tensor()
    gamma_alias = reader.read_alias_tensor()
    beta_alias = reader.read_alias_tensor()
    reader.read_tensor()  # means of the last training batch
    reader.read_tensor()  # their inverse standard deviations
    running_means = reader.read_tensor().reshape(-1)
    running_variances = reader.read_tensor().reshape(-1)
    reader.read_int()  # num_updates
    reader.read_int()  # running_stats_window_size
    _read_multipliers(reader)
    eps = reader.read_float()
    if not math.isfinite(eps) or eps <= 0:
        raise DlibFormatError(f"{name}: eps {eps} is not a positive number")
    if params.size != gamma_alias.size + beta_alias.size:
        raise DlibFormatError(f"{name}: params hold {params.size} values, aliases need more or fewer")
    gamma, beta = _slices(params, gamma_alias, beta_alias)
    if running_means.size != gamma.size or running_variances.size != gamma.size:
        raise DlibFormatError(f"{name}: running statistics do not match gamma ({gamma.size} values)")
    # Fold exactly as dlib does at inference, in float32.
    eps32 = np.float32(eps)
    scale = gamma.reshape(-1) / np.sqrt(running_variances + eps32)
    shift = beta.reshape(-1) - scale * running_means
    shape = gamma.shape
    return Affine(
        name,
        scale.astype(np.float32).reshape(shape),
        shift.astype(np.float32).reshape(shape),
        conv_mode=name == "bn_con2",
    )


def _read_fc(reader: DlibReader, name: str) -> FullyConnected:
    num_outputs = reader.read_int()
    num_inputs = reader.read_int()
    params = reader.read_tensor()
    weights_alias = reader.read_alias_tensor()
    biases_alias = reader.read_alias_tensor()
    bias_mode = reader.read_int()
    _read_multipliers(reader)
    use_bias = reader.read_bool() if name == "fc_3" else True
    if bias_mode not in (0, 1):
        raise DlibFormatError(f"{name}: unknown bias mode {bias_mode}")
    has_bias = bias_mode == 0 and use_bias
    if weights_alias.size != num_inputs * num_outputs:
        raise DlibFormatError(f"{name}: weight alias {weights_alias} is not {num_inputs}x{num_outputs}")
    aliases = (weights_alias, biases_alias) if has_bias else (weights_alias,)
    expected = sum(a.size for a in aliases)
    if params.size != expected:
        raise DlibFormatError(f"{name}: params hold {params.size} values, aliases need {expected}")
    parts = _slices(params, *aliases)
    weights = parts[0].reshape(num_inputs, num_outputs).copy()
    biases = parts[1].reshape(-1).copy() if has_bias else None
    return FullyConnected(name, weights, biases)
