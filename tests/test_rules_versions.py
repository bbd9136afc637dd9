from rule_helpers import facts, fire, text_of


def test_libcudart_for_other_cuda_than_torch():
    f = facts(
        "ImportError: libcudart.so.12: cannot open shared object file: No such file or directory",
        torch_version="2.1.0+cu118",
        torch_cuda="11.8",
        vllm_version="0.2.2",
    )
    finding = fire("CUDA_LIBRARY_MISSING", f)
    assert finding.category == "cuda_version_mismatch"
    assert "CUDA 12" in finding.title and "11.8" in finding.title
    assert "vllm-cu118" not in text_of(finding) and "vllm-cu121" not in text_of(finding)


def test_undefined_symbol_names_the_required_torch():
    line = "ImportError: /usr/lib/python3/site-packages/vllm/_C.abi3.so: undefined symbol: _ZN5torch7LibraryC1E"
    finding = fire("VLLM_C_UNDEFINED_SYMBOL", facts(line, vllm_version="0.8.5", torch_version="2.7.0+cu126"))
    assert "2.6.0" in finding.title and "2.7.0" in finding.title
    assert "pip install torch==2.6.0" in text_of(finding)


def test_undefined_symbol_in_other_extension():
    line = "ImportError: flash_attn_2_cuda.cpython-310-x86_64-linux-gnu.so: undefined symbol: _ZN3c104cuda9SetDeviceEi"
    finding = fire("EXTENSION_UNDEFINED_SYMBOL", facts(line))
    assert finding is not None and "flash_attn_2_cuda" in finding.title
    assert fire("VLLM_C_UNDEFINED_SYMBOL", facts(line)) is None


def test_glibc_and_glibcxx():
    g = fire("GLIBC_TOO_OLD", facts("ImportError: /lib64/libc.so.6: version `GLIBC_2.32' not found", glibc="2.17"))
    assert "GLIBC_2.32" in g.title and "2.17" in g.title
    gx = fire("GLIBCXX_TOO_OLD", facts("/home/u/miniconda3/lib/libstdc++.so.6: version `GLIBCXX_3.4.30' not found"))
    assert "GLIBCXX_3.4.30" in gx.title and "conda" in text_of(gx)
    assert fire("GLIBC_TOO_OLD", facts("Libc version: glibc-2.35")) is None


def test_detected_cuda_mismatch_in_source_build():
    line = (
        "RuntimeError: The detected CUDA version (12.1) mismatches the version that was used to compile "
        "PyTorch (11.8). Please make sure to use the same CUDA versions."
    )
    assert "12.1" in fire("TORCH_CUDA_DETECTED_MISMATCH", facts(line)).title


def test_torch_not_what_vllm_requires_is_secondary_without_errors():
    f = facts("[pip3] torch==2.5.1", torch_version="2.5.1", vllm_version="0.8.3")
    finding = fire("TORCH_NOT_WHAT_VLLM_REQUIRES", f)
    assert finding is not None and finding.confidence < 0.5 and "2.6.0" in finding.title
    assert fire("TORCH_NOT_WHAT_VLLM_REQUIRES", facts(torch_version="2.6.0+cu124", vllm_version="0.8.3")) is None
    # dev builds move their pins; unknown release ranges are not guessed
    assert fire("TORCH_NOT_WHAT_VLLM_REQUIRES", facts(torch_version="2.5.1", vllm_version="0.9.0.dev12+g1234")) is None
    assert fire("TORCH_NOT_WHAT_VLLM_REQUIRES", facts(torch_version="2.5.1", vllm_version="0.99.0")) is None
    # releases once untabulated are known now (mined from each release's wheel metadata)
    assert "2.11.0" in fire("TORCH_NOT_WHAT_VLLM_REQUIRES", facts(torch_version="2.5.1", vllm_version="0.25.0")).title


def test_bundle_requirement_wins_over_table():
    f = facts(
        torch_version="2.6.0", vllm_version="0.8.3", vllm_requirements=[{"name": "torch", "specifier": "==2.7.0"}]
    )
    assert "2.7.0" in fire("TORCH_NOT_WHAT_VLLM_REQUIRES", f).title


def test_vllm_c_missing():
    f = facts(
        "WARNING _custom_ops.py:14] Failed to import from vllm._C with "
        "ModuleNotFoundError(\"No module named 'vllm._C'\")"
    )
    assert fire("VLLM_C_MISSING", f) is not None


def test_cuda_library_major_version_is_read_from_the_library_name():
    f = facts("OSError: libcublasLt.so.13: cannot open shared object file", torch_cuda="12.8")
    finding = fire("CUDA_LIBRARY_MISSING", f)
    assert finding.title.startswith("libcublasLt.so.13 is missing") and "CUDA 13" in finding.title
    unversioned = fire("CUDA_LIBRARY_MISSING", facts("libcudart.so: cannot open shared object file", torch_cuda="12.8"))
    assert unversioned.title.startswith("libcudart.so is missing: a compiled package")


def test_extension_library_is_named_only_from_the_first_quoted_line():
    bare = "ImportError: undefined symbol: _ZN3c104cuda9SetDeviceEi"
    assert fire("EXTENSION_UNDEFINED_SYMBOL", facts(bare)).title.startswith("a compiled extension was built")
    named = "ImportError: /opt/env/lib/xformers/_C.so: undefined symbol: _ZN3c104cuda9SetDeviceEi"
    assert fire("EXTENSION_UNDEFINED_SYMBOL", facts(named)).title.startswith("_C.so was built")


def test_glibc_of_the_system_from_a_collect_env_line_when_not_parsed():
    f = facts("ImportError: /lib64/libc.so.6: version `GLIBC_2.32' not found", "Libc version: glibc-2.17")
    assert "this system has glibc 2.17" in fire("GLIBC_TOO_OLD", f).title


def test_glibcxx_conda_advice_only_when_a_quoted_line_names_conda():
    after = "ImportError: version `GLIBCXX_3.4.29' not found (required by /opt/conda/lib/python3.10/x.so)"
    assert "conda install" in text_of(fire("GLIBCXX_TOO_OLD", facts(after)))
    system = fire("GLIBCXX_TOO_OLD", facts("/usr/lib/libstdc++.so.6: version `CXXABI_1.3.15' not found"))
    assert "CXXABI_1.3.15" in system.title and "conda install" not in text_of(system)
    # 'Conda' in another case is not the conda environment's path
    other_case = fire("GLIBCXX_TOO_OLD", facts("/opt/Conda/lib/libstdc++.so.6: version `GLIBCXX_3.4.30' not found"))
    assert "conda install" not in text_of(other_case)


def test_undefined_symbol_with_a_torch_version_without_digits():
    # a bundle's torch version such as 'nightly' crashed the rule (None[:2]) and with it the whole analysis
    line = "ImportError: /usr/lib/python3/site-packages/vllm/_C.abi3.so: undefined symbol: _ZN5torch7LibraryC1E"
    finding = fire("VLLM_C_UNDEFINED_SYMBOL", facts(line, vllm_version="0.8.5", torch_version="nightly"))
    assert finding.title == "vLLM's compiled extension does not match the installed torch (undefined symbol)."
