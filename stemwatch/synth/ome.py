"""OME-XML for one single-plane image of a plate: Plate/Well/WellSample/ImageRef, Pixels with
a Plane DeltaT, and a MapAnnotation with the acquisition index. tifffile's own ``ome=True``
writer does not emit Plate elements, so the XML is built here and written as the first page's
ImageDescription (``description=xml, metadata=None``)."""

from __future__ import annotations

from datetime import datetime
from xml.sax.saxutils import quoteattr

OME_NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"


def plate_image_xml(
    *,
    plate: str,
    row: int,
    column: int,
    field: int,
    timepoint: int,
    n_rows: int,
    n_columns: int,
    size_x: int,
    size_y: int,
    pixel_type: str,
    significant_bits: int,
    delta_t_s: float,
    started: datetime,
    acquired: datetime,
    image_name: str,
    pixel_size_um: float = 1.0,
) -> str:
    """OME-XML describing one plane of well (``row``, ``column``) (zero-based), ``field``
    (zero-based WellSample index) at ``timepoint`` (zero-based), ``delta_t_s`` seconds after
    the experiment started at ``started`` (per the OME spec DeltaT counts from
    AcquisitionDate, so AcquisitionDate is the experiment's start and WellSample Timepoint the
    moment this plane was taken)."""
    start = started.strftime("%Y-%m-%dT%H:%M:%S")
    when = acquired.strftime("%Y-%m-%dT%H:%M:%S")
    well_name = f"{chr(ord('A') + row)}{column + 1:02d}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<OME xmlns="{OME_NS}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{OME_NS} {OME_NS}/ome.xsd" Creator="stemwatch synth">\n'
        f'  <Plate ID="Plate:0" Name={quoteattr(plate)} Rows="{n_rows}" '
        f'Columns="{n_columns}" RowNamingConvention="letter" ColumnNamingConvention="number">\n'
        f'    <Well ID="Well:{row}:{column}" Row="{row}" Column="{column}">\n'
        f'      <WellSample ID="WellSample:{row}:{column}:{field}" Index="{field}" '
        f'Timepoint="{when}">\n'
        '        <ImageRef ID="Image:0"/>\n'
        "      </WellSample>\n"
        "    </Well>\n"
        "  </Plate>\n"
        f'  <Image ID="Image:0" Name={quoteattr(image_name)}>\n'
        f"    <AcquisitionDate>{start}</AcquisitionDate>\n"
        f'    <Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="{pixel_type}" '
        f'SignificantBits="{significant_bits}" SizeX="{size_x}" SizeY="{size_y}" '
        'SizeC="1" SizeZ="1" SizeT="1" '
        f'PhysicalSizeX="{pixel_size_um}" PhysicalSizeXUnit="&#181;m" '
        f'PhysicalSizeY="{pixel_size_um}" PhysicalSizeYUnit="&#181;m">\n'
        '      <Channel ID="Channel:0:0" Name="Brightfield" SamplesPerPixel="1"/>\n'
        '      <TiffData IFD="0" PlaneCount="1"/>\n'
        f'      <Plane TheC="0" TheZ="0" TheT="0" DeltaT="{delta_t_s:.1f}" DeltaTUnit="s"/>\n'
        "    </Pixels>\n"
        '    <AnnotationRef ID="Annotation:0"/>\n'
        "  </Image>\n"
        "  <StructuredAnnotations>\n"
        '    <MapAnnotation ID="Annotation:0" '
        'Namespace="openmicroscopy.org/stemwatch/acquisition">\n'
        "      <Value>\n"
        f'        <M K="plate">{plate}</M>\n'
        f'        <M K="well">{well_name}</M>\n'
        f'        <M K="field">{field}</M>\n'
        f'        <M K="timepoint">{timepoint}</M>\n'
        "      </Value>\n"
        "    </MapAnnotation>\n"
        "  </StructuredAnnotations>\n"
        "</OME>\n"
    )
