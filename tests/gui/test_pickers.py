"""Device and model pickers: hot-plugged microphones, local model folders."""

from app.gui.device_picker import NONE_LABEL, InputDevicePicker
from app.gui.model_picker import ModelPicker


class Devices:
    def __init__(self, *names):
        self.names = list(names)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return list(self.names)


def test_plugged_in_device_appears_and_the_choice_survives(qtbot):
    devices = Devices("Built-in mic")
    picker = InputDevicePicker(devices)
    qtbot.addWidget(picker)
    picker.select_name("Built-in mic")
    devices.names.append("USB headset")
    picker.refresh()
    assert [picker.itemText(i) for i in range(picker.count())][1:] == ["Built-in mic", "USB headset"]
    assert picker.selected_name() == "Built-in mic"


def test_unplugged_choice_falls_back_to_the_default(qtbot):
    devices = Devices("Built-in mic", "USB headset")
    picker = InputDevicePicker(devices)
    qtbot.addWidget(picker)
    picker.select_name("USB headset")
    devices.names.remove("USB headset")
    picker.refresh()
    assert picker.selected_name() == ""  # the system default


def test_opening_the_list_rescans_unless_recording(qtbot):
    devices = Devices("Built-in mic")
    picker = InputDevicePicker(devices)
    qtbot.addWidget(picker)
    before = devices.calls
    picker.showPopup()
    assert devices.calls == before + 1
    picker.hidePopup()
    picker.set_scanning(False)
    picker.showPopup()
    assert devices.calls == before + 1
    picker.hidePopup()


def test_no_device_is_said_plainly(qtbot):
    picker = InputDevicePicker(Devices())
    qtbot.addWidget(picker)
    assert picker.currentText() == NONE_LABEL and not picker.isEnabled() and not picker.has_devices


def _checkpoint(folder):
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (folder / name).write_text("{}")
    return folder


def test_local_folder_is_validated_and_listed(qtbot, tmp_path):
    good = _checkpoint(tmp_path / "stt-local")
    answers = [str(tmp_path), str(good)]
    picker = ModelPicker(lambda parent: answers.pop(0))
    qtbot.addWidget(picker)
    chosen, rejected = [], []
    picker.model_chosen.connect(chosen.append)
    picker.folder_rejected.connect(rejected.append)
    browse = picker.findData("__browse__")
    picker.setCurrentIndex(browse)
    picker.activated.emit(browse)
    assert rejected and "config.json" in rejected[0] and picker.selected_model() == "kyutai/stt-1b-en_fr-trfs"
    picker.setCurrentIndex(browse)
    picker.activated.emit(browse)
    assert chosen == [str(good)] and picker.selected_model() == str(good)
    assert picker.currentText() == "Folder: stt-local"


def test_cancelled_folder_dialog_keeps_the_model(qtbot):
    picker = ModelPicker(lambda parent: "")
    qtbot.addWidget(picker)
    picker.select_model("kyutai/stt-2.6b-en-trfs")
    browse = picker.findData("__browse__")
    picker.setCurrentIndex(browse)
    picker.activated.emit(browse)
    assert picker.selected_model() == "kyutai/stt-2.6b-en-trfs"
