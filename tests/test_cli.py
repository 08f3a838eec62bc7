"""The command line's text summary (the figures a user reads first)."""
from plasticsim.cli import format_summary


def test_summary_shows_each_layers_figures_under_its_owner():
    summary = {"samples": 200000, "layer1_fraction_of_optimum": 0.9995,
               "layer2_fraction_of_optimum": 0.9923, "layer2_optimum_bits": 8.0413,
               "feedforward_largest_principal_angle_rad": 0.0263,
               "layer1_learned_mode_spectrum": [1.0, 2.0]}
    lines = format_summary(summary).splitlines()
    assert any("fraction of optimum (layer1)" in line and "99.9500%" in line for line in lines)
    assert any("fraction of optimum (layer2)" in line and "99.2300%" in line for line in lines)
    assert any("optimum (bits) (layer2)" in line and "8.0413" in line for line in lines)
    assert any("principal angle (rad) (feedforward)" in line and "0.0263" in line
               for line in lines)
    # Spectra are arrays: listed in summary.json, not in the text table.
    assert not any("mode_spectrum" in line for line in lines)
    assert len(lines) == 5
