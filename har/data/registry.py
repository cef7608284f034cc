"""The datasets har-lab knows: sources, checksums, citation, licence, channels, groups, classes, split.

Facts come from each publisher's documentation (see docs/datasets.md). ``params.yaml`` may override a
dataset's ``window``, ``split`` and reader ``options`` and may declare ``custom`` datasets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from har.data.formats.custom import load_custom_spec
from har.data.spec import DatasetSpec, Source, SplitSpec, WindowSpec
from har.errors import BadInput, validation_message

XYZ = ("x", "y", "z")

UCI_CHANNELS = [f"{sig}_{a}" for sig in ("total_acc", "body_acc", "body_gyro") for a in XYZ]
UCI_GROUPS = {"acc": UCI_CHANNELS[:6], "gyro": UCI_CHANNELS[6:]}
UCI_BASIC = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
UCI_TRANSITIONS = ["STAND_TO_SIT", "SIT_TO_STAND", "SIT_TO_LIE", "LIE_TO_SIT", "STAND_TO_LIE", "LIE_TO_STAND"]
UCI_TRAIN = [1, 3, 5, 6, 7, 8, 11, 14, 15, 16, 17, 19, 21, 22, 23, 25, 26, 27, 28, 29, 30]
UCI_TEST = [2, 4, 9, 10, 12, 13, 18, 20, 24]
UCI_SPLIT_RULE = (
    "official UCI HAR split: 21 training / 9 test volunteers (70/30, chosen at random by the authors)"
)

HAPT_CITATION = (
    "J.-L. Reyes-Ortiz, L. Oneto, A. Samà, X. Parra, D. Anguita. Transition-Aware Human Activity "
    "Recognition Using Smartphones. Neurocomputing 171 (2016) 754-767."
)
HAPT_LICENCE = "CC BY 4.0 (UCI Machine Learning Repository); cite the paper"

MYOGYM_EXERCISES = [
    "Seated Cable Rows", "One-Arm Dumbbell Row", "Wide-Grip Pulldown Behind The Neck",
    "Bent Over Barbell Row", "Reverse Grip Bent-Over Row", "Wide-Grip Front Pulldown", "Bench Press",
    "Incline Dumbbell Flyes", "Incline Dumbbell Press", "Dumbbell Flyes", "Pushups", "Leverage Chest Press",
    "Close-Grip Barbell Bench Press", "Bar Skullcrusher", "Triceps Pushdown", "Bench Dip / Dip",
    "Overhead Triceps Extension", "Tricep Dumbbell Kickback", "Spider Curl", "Dumbbell Alternate Bicep Curl",
    "Incline Hammer Curl", "Concentration Curl", "Cable Curl", "Hammer Curl", "Upright Barbell Row",
    "Side Lateral Raise", "Front Dumbbell Raise", "Seated Dumbbell Shoulder Press", "Car Drivers",
    "Lying Rear Delt Raise",
]  # fmt: skip
MYOGYM_CHANNELS = [f"emg_{i}" for i in range(1, 9)] + [f"acc_{a}" for a in XYZ] + [f"gyro_{a}" for a in XYZ]

# OPPORTUNITY: the 113 body-worn channels of the challenge (columns 2-134 without the IMU quaternions).
OPP_ACC_SITES = ["RKN^", "HIP", "LUA^", "RUA_", "LH", "BACK", "RKN_", "RWR", "RUA^", "LUA_", "LWR", "RH"]
OPP_IMUS = ["BACK", "RUA", "RLA", "LUA", "LLA"]
OPP_SHOES = ["L-SHOE", "R-SHOE"]
OPP_SHOE_AXES = (
    ["EuX", "EuY", "EuZ", "Nav_Ax", "Nav_Ay", "Nav_Az", "Body_Ax", "Body_Ay", "Body_Az"]
    + [f"AngVel{f}Frame{a}" for f in ("Body", "Nav") for a in "XYZ"]
    + ["Compass"]
)
OPP_ACC = [f"Accelerometer {s} acc{a}" for s in OPP_ACC_SITES for a in "XYZ"]
OPP_IMU = [
    f"InertialMeasurementUnit {s} {q}{a}"
    for s in OPP_IMUS
    for q in ("acc", "gyro", "magnetic")
    for a in "XYZ"
]
OPP_SHOE = [f"InertialMeasurementUnit {s} {axis}" for s in OPP_SHOES for axis in OPP_SHOE_AXES]
OPP_GESTURES = {
    0: "Null", 406516: "Open Door 1", 406517: "Open Door 2", 404516: "Close Door 1", 404517: "Close Door 2",
    406520: "Open Fridge", 404520: "Close Fridge", 406505: "Open Dishwasher", 404505: "Close Dishwasher",
    406519: "Open Drawer 1", 404519: "Close Drawer 1", 406511: "Open Drawer 2", 404511: "Close Drawer 2",
    406508: "Open Drawer 3", 404508: "Close Drawer 3", 408512: "Clean Table", 407521: "Drink from Cup",
    405506: "Toggle Switch",
}  # fmt: skip
OPP_LOCOMOTION = {0: "Null", 1: "Stand", 2: "Walk", 4: "Sit", 5: "Lie"}

# Workout/Exercise Images: the 22 class folders of the Kaggle dataset, named as published.
WORKOUT_CLASSES = [
    "barbell biceps curl", "lat pulldown", "pull up", "leg extension", "plank", "lateral raises", "deadlift",
    "chest fly machine", "push up", "tricep dips", "hip thrust", "decline bench press", "squat",
    "shoulder press", "t bar row", "tricep pushdown", "russian twist", "romanian deadlift", "bench press",
    "hammer curl", "leg raises", "incline bench press",
]  # fmt: skip
IMAGE_GROUPS = {"rgb": ["red", "green", "blue"]}


def _builtin() -> dict[str, DatasetSpec]:
    uci_common: dict[str, Any] = {
        "rate_hz": 50,
        "channels": UCI_CHANNELS,
        "groups": UCI_GROUPS,
        "classes": UCI_BASIC,
        "window": WindowSpec(size=128, step=64, label="segment"),
        "split": SplitSpec(rule=UCI_SPLIT_RULE, train_subjects=UCI_TRAIN, test_subjects=UCI_TEST),
        "reference_windows": {"train": 7352, "test": 2947},
    }
    hapt = DatasetSpec(
        name="uci_hapt",
        title="UCI HAPT v2.1: smartphone raw acc + gyro of 30 volunteers (raw source of UCI HAR)",
        format="uci_hapt",
        homepage="https://archive.ics.uci.edu/dataset/341",
        sources=[
            Source(
                url="https://archive.ics.uci.edu/static/public/341/"
                "smartphone+based+recognition+of+human+activities+and+postural+transitions.zip",
                filename="uci_hapt.zip",
                note="UCI publishes no archive checksum; the extracted files are checked against "
                "har/data/checksums/uci_hapt.sha256",
            )
        ],
        checksums="uci_hapt.sha256",
        citation=HAPT_CITATION,
        licence=HAPT_LICENCE,
        **uci_common,
        notes="Preprocessed as UCI HAR: median filter, 3rd-order 20 Hz low-pass Butterworth, 0.3 Hz "
        "Butterworth gravity/body split; 6 basic activities by default (options.activities: all for 12).",
    )
    sample = hapt.model_copy(
        update={
            "name": "uci_hapt_sample",
            "title": "Bundled sample of UCI HAPT: volunteers 1, 3, 5 (train) and 2, 4 (test), offline",
            "sources": [],
            "checksums": "uci_hapt_sample.sha256",
            "bundled": "sample/uci_hapt",
            "split": SplitSpec(
                rule="official UCI HAR split restricted to the bundled volunteers",
                train_subjects=[1, 3, 5],
                test_subjects=[2, 4],
            ),
            "reference_windows": None,
        }
    )
    uci_har = DatasetSpec(
        name="uci_har",
        title="UCI HAR v1.0: 128-sample windows of smartphone acc + gyro (Inertial Signals)",
        format="uci_har",
        homepage="https://archive.ics.uci.edu/dataset/240",
        sources=[
            Source(
                url="https://archive.ics.uci.edu/static/public/240/"
                "human+activity+recognition+using+smartphones.zip",
                filename="uci_har.zip",
                note="UCI publishes no archive checksum; the label files are checked against "
                "har/data/checksums/uci_har.sha256",
            )
        ],
        checksums="uci_har.sha256",
        unpinned=["*Inertial Signals/*"],  # their digests could not be taken offline: see docs/datasets.md
        citation="D. Anguita, A. Ghio, L. Oneto, X. Parra, J. L. Reyes-Ortiz. A Public Domain Dataset for "
        "Human Activity Recognition Using Smartphones. ESANN 2013.",
        licence="CC BY 4.0 (UCI Machine Learning Repository); README: cite the authors, no commercial use",
        **uci_common,
        notes="Already windowed by the publisher (7352 train / 2947 test windows); window settings are fixed.",
    )
    myogym = DatasetSpec(
        name="myogym",
        title="MyoGym: Myo armband EMG + IMU of 10 people doing 30 gym exercises (+ NULL)",
        format="myogym",
        homepage="http://www.oulu.fi/bisg/node/40364",
        sources=[
            Source(
                url="https://github.com/lok63/HAR-for-fitness-data/raw/"
                "f01c64ab325035135474a1f4c409acbf93577a04/data/MyoGym/MyoGym.mat",
                filename="MyoGym.mat",
                git_blob_sha1="81be7eaed65fc76471655f53e10432cf99c8a7cb",
                note="the publisher distributes MyoGym.mat on request from the homepage; this is the only "
                "public copy found, pinned by its git blob id; a copy from the publisher that differs can be "
                "checked and pinned with 'har data pin myogym --source FOLDER'",
            )
        ],
        checksums="myogym.sha256",
        citation="H. Koskimäki, P. Siirtola, J. Röning. MyoGym: introducing an open gym data set for "
        "activity recognition collected using Myo armband. UbiComp/ISWC '17 Adjunct (HASCA 2017).",
        licence="no licence named; the publisher asks users to cite the article",
        rate_hz=50,
        channels=MYOGYM_CHANNELS,
        groups={"emg": MYOGYM_CHANNELS[:8], "acc": MYOGYM_CHANNELS[8:11], "gyro": MYOGYM_CHANNELS[11:]},
        classes=["NULL", *MYOGYM_EXERCISES],
        window=WindowSpec(size=50, step=25, label="segment"),
        split=SplitSpec(
            rule="subject-wise: persons 9-10 test, 1-8 train; leave-two-persons-out folds",
            test_subjects=[9, 10],
            folds=[[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]],
        ),
        notes="Window 1 s (50 samples) with 50% overlap, as the CNN-ResBiGRU notebook's 1 s windows; "
        "NULL (label 99) is kept as class 0.",
    )
    opportunity = DatasetSpec(
        name="opportunity",
        title="OPPORTUNITY: body-worn sensors of 4 people in a kitchen (ADL runs + drill)",
        format="opportunity",
        homepage="https://archive.ics.uci.edu/dataset/226",
        sources=[
            Source(
                url="https://archive.ics.uci.edu/static/public/226/opportunity+activity+recognition.zip",
                filename="opportunity.zip",
                note="UCI publishes no archive checksum; the .dat files are checked against "
                "har/data/checksums/opportunity.sha256",
            )
        ],
        checksums="opportunity.sha256",
        citation="R. Chavarriaga, H. Sagha, A. Calatroni, S. Digumarti, G. Tröster, J. del R. Millán, "
        "D. Roggen. The Opportunity challenge: A benchmark database for on-body sensor-based activity "
        "recognition. Pattern Recognition Letters 34(15), 2013.",
        licence="CC BY 4.0 (UCI Machine Learning Repository); README: cite Roggen et al. 2010 or "
        "Chavarriaga et al. 2013",
        rate_hz=30,
        channels=OPP_ACC + OPP_IMU + OPP_SHOE,
        groups={"acc": OPP_ACC, "imu": OPP_IMU, "shoe": OPP_SHOE},
        classes=list(OPP_GESTURES.values()),
        window=WindowSpec(size=24, step=12, label="last"),
        split=SplitSpec(
            rule="challenge protocol: test = ADL4-5 of subjects 2 and 3; train = S1 all runs, S2-S3 "
            "ADL1-3 + Drill",
            test_subjects=[2, 3],
            train_subjects=None,
        ),
        notes="113 body-worn channels (quaternions dropped), NaN gaps linearly interpolated; window label = "
        "label of the last sample (DeepConvLSTM protocol). options.task: gestures (18 classes incl. Null) "
        "or locomotion (5 incl. Null).",
    )
    watch = DatasetSpec(
        name="watch",
        title="Smartwatch IMU of shoulder physiotherapy exercises (seglearn watch set)",
        format="watch",
        homepage="https://github.com/dmbee/seglearn",
        sources=[
            Source(
                url="https://files.pythonhosted.org/packages/py3/s/seglearn/seglearn-1.2.5-py3-none-any.whl",
                filename="seglearn-1.2.5-py3-none-any.whl",
                sha256="ec6b952c85c9627050102854b372d85951563d3b990df677d7c55547e87413dd",
                note="the data ships inside the seglearn wheel as seglearn/data/watch_dataset.npy",
            )
        ],
        checksums="watch.sha256",
        citation="D. M. Burns, N. Leung, M. Hardisty, C. M. Whyne, P. Henry, S. McLachlin. Shoulder "
        "physiotherapy exercise recognition: machine learning the inertial signals from a smartwatch. "
        "Physiological Measurement 39(7) 075007, 2018.",
        licence="BSD-3-Clause (seglearn package); no separate data licence stated",
        rate_hz=50,
        channels=[f"acc_{a}" for a in XYZ] + [f"gyro_{a}" for a in XYZ],
        groups={"acc": [f"acc_{a}" for a in XYZ], "gyro": [f"gyro_{a}" for a in XYZ]},
        classes=["PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW"],
        window=WindowSpec(size=100, step=50, label="segment"),
        split=SplitSpec(
            rule="subject-wise: subjects 9-10 test, 1-8 train; leave-two-subjects-out folds",
            test_subjects=[9, 10],
            folds=[[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]],
        ),
        notes="Channels ax, ay, az (g) and wx, wy, wz (gyroscope) renamed acc_* and gyro_*; 2 s windows.",
    )
    workout_images = DatasetSpec(
        name="workout_images",
        kind="images",
        title="Workout/Exercise Images (Kaggle, archive.zip of 818 MB): about 13,900 images of 22 gym exercises, "
        "one folder each",
        format="image_folder",
        homepage="https://www.kaggle.com/datasets/hasyimabdillah/workoutexercises-images",
        sources=[
            Source(
                url="https://www.kaggle.com/api/v1/datasets/download/hasyimabdillah/workoutexercises-images",
                filename="workoutexercises-images.zip",
                note="Kaggle serves it only to signed-in users (API token), and publishes no checksum: "
                "download the zip yourself and put it (or its extracted class folders) in "
                "$HAR_DATA_MIRROR/workout_images/",
            )
        ],
        citation="Hasyim Abdillah, Workout/Exercise Images, Kaggle (2022, updated 2023); used by the DebuggerCafe "
        "tutorial 'Workout Recognition using CNN and Deep Learning' (ResNet-50, 98.8% validation accuracy).",
        licence="CC BY-NC-SA 4.0 (non-commercial, share-alike; Kaggle metadata); frames of public videos and "
        "images from YouTube and Google Images, so third-party copyright may apply on top",
        channels=list(IMAGE_GROUPS["rgb"]),
        groups=IMAGE_GROUPS,
        classes=sorted(WORKOUT_CLASSES),
        split=SplitSpec(
            rule="stratified random split by class: 80% train, 10% validation, 10% test (seeded)"
        ),
        options={"size": 256, "crop": 224, "val_fraction": 0.1, "test_fraction": 0.1, "seed": 0},
        notes="Almost all images are frames of videos, so neighbouring frames are near-duplicates and a random "
        "split leaks them across train and test: read test accuracy as an upper bound (the tutorial used a "
        "random 90/10 train/validation split).",
    )
    return {s.name: s for s in (sample, hapt, uci_har, myogym, opportunity, watch, workout_images)}


BUILTIN: dict[str, DatasetSpec] = _builtin()
OVERRIDABLE = {"window", "split", "options"}


def load_params(path: Path = Path("params.yaml")) -> dict[str, Any]:
    """Read params.yaml (empty when absent)."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise BadInput(f"{path}: not valid YAML ({exc}); fix the syntax") from exc
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping at the top level")
    return data


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def dataset_names(params: dict[str, Any] | None = None) -> list[str]:
    """Built-in datasets plus the custom ones declared in params.yaml."""
    declared = list((params or {}).get("datasets", {}) or {})
    return list(BUILTIN) + [n for n in declared if n not in BUILTIN]


def resolve(name: str, params_path: Path = Path("params.yaml")) -> DatasetSpec:
    """The spec of ``name`` with params.yaml overrides applied; BadInput names the offending key."""
    params = load_params(params_path)
    overrides = ((params.get("datasets") or {}).get(name)) or {}
    if not isinstance(overrides, dict):
        raise BadInput(f"{params_path}: datasets.{name} must be a mapping")
    if name in BUILTIN:
        unknown = sorted(set(overrides) - OVERRIDABLE)
        if unknown:
            raise BadInput(
                f"{params_path}: datasets.{name}.{unknown[0]} is not a known key "
                f"(allowed: {', '.join(sorted(OVERRIDABLE))})"
            )
        base = BUILTIN[name].model_dump()
        try:
            return DatasetSpec.model_validate(_merge(base, overrides))
        except ValidationError as exc:
            raise BadInput(validation_message(params_path, f"datasets.{name}", exc)) from exc
    if overrides.get("format") == "image_folder":
        return _custom_images(name, overrides, params_path)
    if overrides.get("format") == "custom":
        return load_custom_spec(name, overrides, params_path)
    known = ", ".join(dataset_names(params))
    raise BadInput(
        f"unknown dataset {name!r} (known: {known}); declare your own under 'datasets:' in {params_path} "
        "with format: custom (recordings) or format: image_folder (one folder of images per class)"
    )


def _custom_images(name: str, entry: dict[str, Any], params_path: Path) -> DatasetSpec:
    """Your own class-per-folder images: ``{format: image_folder, source: path, options: {...}}``."""
    unknown = sorted(set(entry) - {"format", "source", "options", "title", "classes"})
    if unknown:
        raise BadInput(f"{params_path}: datasets.{name}.{unknown[0]} is not a known key for an image dataset "
                       "(allowed: format, source, options, title, classes)")  # fmt: skip
    if "source" not in entry:
        raise BadInput(f"{params_path}: datasets.{name}.source is missing; name the folder holding one folder "
                       "of images per class")  # fmt: skip
    folder = Path(str(entry["source"]))
    if not folder.is_absolute():  # relative to the params file, like every path in it
        folder = Path(params_path).parent / folder
    try:
        return DatasetSpec(
            name=name,
            kind="images",
            title=str(entry.get("title") or f"image dataset {name}"),
            format="image_folder",
            bundled=str(folder),
            citation="your own images",
            licence="yours",
            channels=list(IMAGE_GROUPS["rgb"]),
            groups=IMAGE_GROUPS,
            classes=list(entry.get("classes") or []),
            split=SplitSpec(
                rule="stratified random split by class (options.val_fraction, test_fraction, seed)"
            ),
            options=dict(entry.get("options") or {}),
        )
    except ValidationError as exc:
        raise BadInput(validation_message(params_path, f"datasets.{name}", exc)) from exc
