//! Buffer creation from host data, and the one readback path (staging copy, map, poll, cast).

use wgpu::util::DeviceExt;

use super::{GpuContext, GpuError};

/// Usages of every storage buffer: bound to kernels, written by the host
/// (`queue.write_buffer`), copied out for readback, and bound as 64 KiB uniform windows by
/// the conv kernels (a uniform load is a gather on llvmpipe, a storage load a lane loop).
const STORAGE_USAGES: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::UNIFORM);

/// Bytes of `floats` f32 values, failing when one binding could not cover them.
pub fn storage_bytes(ctx: &GpuContext, what: &str, floats: usize) -> Result<u64, GpuError> {
    // A zero-sized binding is invalid; keep at least one value.
    let needed = (floats.max(1) as u64) * 4;
    let limit = ctx.max_binding_bytes();
    if needed > limit {
        return Err(GpuError::TooLarge { what: what.into(), needed, limit });
    }
    Ok(needed)
}

/// A storage buffer holding `data`.
pub fn storage_from_f32(ctx: &GpuContext, label: &str, data: &[f32]) -> Result<wgpu::Buffer, GpuError> {
    storage_bytes(ctx, label, data.len())?;
    let contents: &[u8] = if data.is_empty() { &[0; 4] } else { bytemuck::cast_slice(data) };
    Ok(ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents,
        usage: STORAGE_USAGES,
    }))
}

/// A buffer of `data` (then `padding` zeros) that kernels may bind as storage or as a
/// uniform window (the conv weights).
pub fn weights_from_f32(ctx: &GpuContext, label: &str, data: &[f32], padding: usize) -> Result<wgpu::Buffer, GpuError> {
    let mut contents = Vec::with_capacity(data.len() + padding);
    contents.extend_from_slice(data);
    contents.resize(data.len() + padding, 0.0);
    let size = (contents.len().max(1) as u64) * 4;
    if size > ctx.limits.max_buffer_size {
        return Err(GpuError::TooLarge { what: label.into(), needed: size, limit: ctx.limits.max_buffer_size });
    }
    if contents.is_empty() {
        contents.push(0.0);
    }
    Ok(ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(&contents),
        usage: STORAGE_USAGES | wgpu::BufferUsages::UNIFORM,
    }))
}

/// A zero-filled storage buffer of `floats` values (wgpu zero-initializes new buffers).
pub fn storage_zeroed(ctx: &GpuContext, label: &str, floats: usize) -> Result<wgpu::Buffer, GpuError> {
    let size = storage_bytes(ctx, label, floats)?;
    Ok(ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: STORAGE_USAGES,
        mapped_at_creation: false,
    }))
}

/// A uniform buffer holding one `#[repr(C)]` parameter block.
pub fn uniform<T: bytemuck::Pod>(ctx: &GpuContext, label: &str, value: &T) -> wgpu::Buffer {
    ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::bytes_of(value),
        usage: wgpu::BufferUsages::UNIFORM,
    })
}

/// Finishes `encoder` with a copy of `len` f32 values from `source` (starting at value
/// `offset`) into a staging buffer, submits it, waits for the GPU and returns the values.
///
/// This is the crate's only readback: callers record their work into `encoder` so that
/// computation and copy go to the GPU in one submission.
pub fn submit_and_read(
    ctx: &GpuContext,
    mut encoder: wgpu::CommandEncoder,
    source: &wgpu::Buffer,
    offset: usize,
    len: usize,
) -> Result<Vec<f32>, GpuError> {
    let bytes = (len as u64) * 4;
    let start = (offset as u64) * 4;
    if start + bytes > source.size() {
        return Err(GpuError::InvalidInput(format!(
            "readback of {len} values at offset {offset} exceeds a buffer of {} values",
            source.size() / 4
        )));
    }
    if len == 0 {
        ctx.queue.submit([encoder.finish()]);
        return Ok(Vec::new());
    }
    // MAP_READ buffers may only be COPY_DST, so results travel through a staging buffer.
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback staging"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    encoder.copy_buffer_to_buffer(source, start, &staging, 0, bytes);
    let submission = ctx.queue.submit([encoder.finish()]);

    let (sender, receiver) = std::sync::mpsc::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |result| {
        // The receiver outlives the poll below; a failed send only means we already gave up.
        let _ = sender.send(result);
    });
    ctx.device.poll(wgpu::PollType::Wait { submission_index: Some(submission), timeout: None }).map_err(
        |e| match ctx.take_uncaptured_error() {
            // A rejected submission surfaces here; its validation error says why.
            Some(message) => GpuError::Validation { context: "submitting GPU work".into(), message },
            None => GpuError::Readback(format!("waiting for the GPU: {e}")),
        },
    )?;
    ctx.check_lost()?;
    match receiver.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(GpuError::Readback(format!("mapping the staging buffer: {e}"))),
        Err(_) => return Err(GpuError::Readback("the map callback never ran".into())),
    }
    let values = {
        let view = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| GpuError::Readback(format!("reading the mapped staging buffer: {e}")))?;
        // The mapped range is only guaranteed 4-byte aligned for f32 if the pointer is;
        // `pod_collect_to_vec` copies without requiring alignment.
        bytemuck::pod_collect_to_vec::<u8, f32>(&view)
    };
    staging.unmap();
    Ok(values)
}

/// Reads `len` f32 values from `source` starting at value `offset` (one submission).
pub fn read_buffer(ctx: &GpuContext, source: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>, GpuError> {
    let encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
    submit_and_read(ctx, encoder, source, offset, len)
}
