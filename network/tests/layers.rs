//! Pictures of every layer (`visualize --layers`): the sheet is as large as its layout says, a
//! known activation lands at the pixel the layout gives for it, the filters are drawn as RGB
//! tiles for the first convolution and grey tiles per input channel deeper, and the command
//! writes the sheet for a test image and for a file.

mod common;

use std::path::Path;

use common::*;
use ndarray::Array3;
use network::arch::seed_network;
use network::batch::Normalizer;
use network::infer::Model;
use network::layers_view::{Filters, Layout, filters_png, layers_png};
use network::model::{Init, Layer, Network};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The seed network with every parameter zero but the centre tap of conv1's filter 3 on the
/// red channel: conv1's map 3 is then the input's red plane, every other map zero.
fn probe_network() -> Network {
    let mut net = Network::new(&seed_network(), Init::He, &mut StdRng::seed_from_u64(1)).unwrap();
    for layer in &mut net.layers {
        if let Some((mut w, b)) = layer.params_mut() {
            w.fill(0.0);
            b.fill(0.0);
        }
    }
    let Layer::Conv { w, .. } = &mut net.layers[0] else {
        panic!("the seed network starts with a convolution");
    };
    w[[3, 0, 2, 2]] = 1.0;
    net
}

fn model(net: Network) -> Model {
    let identity = Normalizer {
        mean: [0.0; 3],
        std: [1.0; 3],
    };
    Model::new(net, identity, 1, "direct".parse().unwrap()).unwrap()
}

fn rgb_at(picture: &image::RgbImage, (x, y): (u32, u32)) -> [u8; 3] {
    picture.get_pixel(x, y).0
}

#[test]
fn a_known_activation_lands_at_its_pixel() {
    let net = probe_network();
    let layout = Layout::of(&net);
    let mut model = model(net.clone());
    let mut input = Array3::<f32>::zeros((3, 32, 32));
    input[[0, 10, 20]] = 2.5;
    let trace = model.trace(input.view(), 0).unwrap();
    assert_eq!(trace.len(), layout.rows.len());
    assert_eq!(trace[1].activation[[3, 10, 20]], 2.5);
    let png = layers_png(Path::new("probe.png"), &net, &trace, "probe", "airplane").unwrap();
    let picture = image::load_from_memory(&png).unwrap().to_rgb8();
    assert_eq!(picture.dimensions(), layout.size);
    // conv1 (row 1) and its leaky ReLU (row 2): map 3 is white at (10, 20), black beside it;
    // the same pixel of map 2 is black.
    for row in &layout.rows[1..3] {
        let grid = &row.activation;
        let at = grid.pixel(3, (10, 20));
        for dy in 0..grid.scale {
            for dx in 0..grid.scale {
                assert_eq!(rgb_at(&picture, (at.0 + dx, at.1 + dy)), [255; 3]);
            }
        }
        assert_eq!(rgb_at(&picture, grid.pixel(3, (10, 21))), [0; 3]);
        assert_eq!(rgb_at(&picture, grid.pixel(3, (11, 20))), [0; 3]);
        assert_eq!(rgb_at(&picture, grid.pixel(2, (10, 20))), [0; 3]);
    }
    // The input's red map (row 0, map 0) is white there too.
    assert_eq!(
        rgb_at(&picture, layout.rows[0].activation.pixel(0, (10, 20))),
        [255; 3]
    );
}

#[test]
fn the_layout_fits_every_layer_and_its_filters() {
    let net = Network::new(&seed_network(), Init::He, &mut StdRng::seed_from_u64(2)).unwrap();
    let layout = Layout::of(&net);
    assert_eq!(layout.rows.len(), net.layers.len() + 1);
    let kinds: Vec<Option<Filters>> = layout
        .rows
        .iter()
        .map(|r| r.filters.map(|(_, k)| k))
        .collect();
    assert_eq!(kinds[1], Some(Filters::Rgb));
    assert_eq!(kinds[4], Some(Filters::Grey));
    assert_eq!(kinds[7], Some(Filters::Grey));
    assert_eq!(kinds.iter().filter(|k| k.is_some()).count(), 3);
    // conv2's grey tiles: one per filter (20) and input channel (16).
    let (grey, _) = layout.rows[4].filters.unwrap();
    assert_eq!((grey.count, grey.cols), (20 * 16, 16));
    for (i, row) in layout.rows.iter().enumerate() {
        let shape = &net.shapes[i];
        assert_eq!(row.activation.count, shape[0], "row {i}");
        let panels = [
            Some(row.activation),
            Some(row.gradient),
            row.filters.map(|f| f.0),
        ];
        let mut right = 0;
        for grid in panels.into_iter().flatten() {
            let (w, h) = grid.size();
            assert!(grid.origin.0 >= right, "row {i}: panels overlap");
            right = grid.origin.0 + w;
            assert!(
                right <= layout.size.0 && grid.origin.1 + h <= layout.size.1,
                "row {i}"
            );
            // The last tile's last pixel block ends inside the grid.
            let last = grid.pixel(grid.count - 1, (grid.side.0 - 1, grid.side.1 - 1));
            assert!(last.0 + grid.scale <= grid.origin.0 + w, "row {i}");
            assert!(last.1 + grid.scale <= grid.origin.1 + h, "row {i}");
        }
    }
    // The rows do not overlap.
    for pair in layout.rows.windows(2) {
        let tallest = [
            pair[0].activation.size().1,
            pair[0].filters.map_or(0, |f| f.0.size().1),
        ];
        assert!(pair[0].top + tallest.into_iter().max().unwrap() < pair[1].top);
    }
}

#[test]
fn the_first_filters_are_rgb_tiles() {
    let mut net = probe_network();
    let Layer::Conv { w, .. } = &mut net.layers[0] else {
        unreachable!()
    };
    // Filter 0: pure green at its top-left tap, the lowest weight elsewhere is 0.
    w[[0, 1, 0, 0]] = 1.0;
    let png = filters_png(Path::new("filters.png"), &net).unwrap();
    let picture = image::load_from_memory(&png).unwrap().to_rgb8();
    // 16 filters of 5×5, 8 a line, 12 pixels a tap, 2 between tiles and around.
    let tile = 5 * 12;
    assert_eq!(
        picture.dimensions(),
        (8 * tile + 7 * 2 + 4, 2 * tile + 2 + 4)
    );
    assert_eq!(rgb_at(&picture, (2, 2)), [0, 255, 0]);
    assert_eq!(rgb_at(&picture, (2 + 12, 2)), [0, 0, 0]);
}

#[test]
fn visualize_layers_writes_a_sheet_per_image() {
    let data = cifar_dir("layers-data", 100, 20);
    let run = temp_dir("layers-run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let trained = run_cli(&[
        "--data",
        d,
        "--out",
        r,
        "--epochs",
        "1",
        "--batch-size",
        "50",
        "--technique",
        "im2col",
    ]);
    assert!(trained.0, "{}", trained.2);
    let out = temp_dir("layers-out");
    let own = out.join("mine.png");
    image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 90]))
        .save(&own)
        .unwrap();
    let pictures = out.join("pictures");
    let result = run_cli(&[
        "visualize",
        "--model",
        r,
        "--index",
        "4",
        "--image",
        own.to_str().unwrap(),
        "--layers",
        "--out",
        pictures.to_str().unwrap(),
    ]);
    assert!(result.0, "{}", result.2);
    let net = Network::new(&seed_network(), Init::He, &mut StdRng::seed_from_u64(0)).unwrap();
    let size = Layout::of(&net).size;
    for name in ["test-4-layers.png", "mine-layers.png"] {
        let picture = image::open(pictures.join(name)).unwrap().to_rgb8();
        assert_eq!(picture.dimensions(), size, "{name}");
    }
    assert!(
        !pictures.join("test-4.png").exists(),
        "--layers draws no maps"
    );
    for dir in [data, run, out] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A network of half a million 1×1 filter tiles would make a picture of about 75 million
/// pixels: refused before the canvas is allocated, naming the picture.
#[test]
fn a_sheet_past_the_pixel_limit_is_refused() {
    use network::arch::LayerSpec;
    let conv = |filters| LayerSpec::Conv {
        filters,
        size: 1,
        stride: 1,
        pad: 0,
        rates: Default::default(),
    };
    let spec = [
        LayerSpec::Input {
            channels: 3,
            height: 4,
            width: 4,
        },
        conv(512),
        conv(1024),
        LayerSpec::Fc {
            outputs: 10,
            rates: Default::default(),
        },
        LayerSpec::Softmax,
    ];
    let net = Network::new(&spec, Init::He, &mut StdRng::seed_from_u64(1)).unwrap();
    let size = Layout::of(&net).size;
    assert!(
        u64::from(size.0) * u64::from(size.1) > 64_000_000,
        "{size:?}"
    );
    let err = layers_png(Path::new("huge.png"), &net, &[], "heading", "cat").unwrap_err();
    assert!(
        err.to_string().contains("huge.png") && err.to_string().contains("million"),
        "{err}"
    );
}
