"""The ISPyB tables and columns cryolive reads or writes.

A facility's ISPyB can lack columns the ``ispyb`` package's models have (the models run ahead
of the published schema); that is fine as long as cryolive does not use them. ``cryolive db
current`` checks the database against this list, and a test checks that every ISPyB column the
code names is listed here.
"""

from __future__ import annotations

NEEDS: dict[str, tuple[str, ...]] = {
    "Atlas": ("atlasId", "atlasImage", "cassetteSlot", "dataCollectionGroupId", "pixelSize"),
    "BFactorFit": ("numberOfParticles", "particleClassificationId", "resolution"),
    "CryoemInitialModel": ("cryoemInitialModelId", "numberOfParticles", "resolution"),
    "GridSquare": (
        "angle", "atlasId", "gridSquareId", "gridSquareImage", "gridSquareLabel", "height",
        "pixelLocationX", "pixelLocationY", "pixelSize", "stageLocationX", "stageLocationY",
        "width",
    ),
    "FoilHole": (
        "diameter", "foilHoleId", "foilHoleImage", "foilHoleLabel", "gridSquareId",
        "pixelLocationX", "pixelLocationY", "pixelSize", "stageLocationX", "stageLocationY",
    ),
    "AutoProcProgram": (
        "autoProcProgramId", "processingEndTime", "processingJobId", "processingMessage",
        "processingPrograms", "processingStartTime", "processingStatus",
    ),
    "AutoProcProgramAttachment": (
        "autoProcProgramAttachmentId", "autoProcProgramId", "fileName", "filePath", "fileType",
        "importanceRank",
    ),
    "AutoProcProgramMessage": (
        "autoProcProgramId", "autoProcProgramMessageId", "description", "message",
        "recordTimeStamp", "severity",
    ),
    "BLSession": (
        "beamLineName", "endDate", "proposalId", "sessionId", "startDate", "visit_number",
    ),
    "CTF": (
        "amplitudeContrast", "astigmatism", "astigmatismAngle", "autoProcProgramId", "boxSizeX",
        "boxSizeY", "ccValue", "comments", "ctfId", "defocusStepSize", "estimatedDefocus",
        "estimatedResolution", "fftTheoreticalFullPath", "iceRingDensity", "maxDefocus",
        "maxResolution", "minDefocus", "minResolution", "motionCorrectionId",
    ),
    "DataCollection": (
        "SESSIONID", "binning", "comments", "dataCollectionGroupId", "dataCollectionId",
        "exposureTime", "fileTemplate", "imageDirectory", "imageSizeX", "imageSizeY",
        "imageSuffix", "magnification", "nominalDefocus", "nominalMagnification",
        "numberOfImages", "phasePlate", "pixelSizeOnImage", "slitGapHorizontal", "startTime",
        "totalExposedDose", "voltage",
    ),
    "DataCollectionGroup": (
        "dataCollectionGroupId", "experimentType", "experimentTypeId", "sessionId", "startTime",
    ),
    "ExperimentType": ("active", "experimentTypeId", "name", "proposalType"),
    "MotionCorrection": (
        "autoProcProgramId", "averageMotionPerFrame", "comments", "dataCollectionId",
        "dosePerFrame", "doseWeight", "driftPlotFullPath", "fftCorrectedFullPath", "fftFullPath",
        "firstFrame",
        "imageNumber", "lastFrame", "micrographFullPath", "micrographSnapshotFullPath",
        "motionCorrectionId", "movieId", "patchesUsedX", "patchesUsedY", "totalMotion",
    ),
    "Movie": (
        "angle", "createdTimeStamp", "dataCollectionId", "fluence", "foilHoleId",
        "movieFullPath", "movieId", "movieNumber", "nominalDefocus", "numberOfFrames",
        "positionX", "positionY",
    ),
    "ParticleClassification": (
        "angularEfficiency", "bFactorFitLinear", "classDistribution", "classImageFullPath",
        "classNumber", "estimatedResolution", "overallFourierCompleteness",
        "particleClassificationGroupId", "particleClassificationId", "particlesPerClass",
        "selected",
    ),
    "ParticleClassificationGroup": (
        "batchNumber", "binnedPixelSize", "numberOfClassesPerBatch",
        "numberOfParticlesPerBatch", "particleClassificationGroupId", "particlePickerId",
        "programId", "symmetry", "type",
    ),
    "ParticlePicker": (
        "firstMotionCorrectionId", "numberOfParticles", "particleDiameter", "particlePickerId",
        "particlePickingTemplate", "programId", "summaryImageFullPath",
    ),
    "Permission": ("description", "permissionId", "type"),
    "Person": ("emailAddress", "familyName", "givenName", "login", "personId"),
    "ProcessingJob": (
        "automatic", "dataCollectionId", "displayName", "processingJobId", "recipe",
        "recordTimestamp",
    ),
    "ProcessingJobParameter": (
        "parameterKey", "parameterValue", "processingJobId", "processingJobParameterId",
    ),
    "Proposal": ("personId", "proposalCode", "proposalId", "proposalNumber", "state", "title"),
    "RelativeIceThickness": (
        "autoProcProgramId", "maximum", "median", "minimum", "motionCorrectionId", "q1", "q3",
        "relativeIceThicknessId",
    ),
    "Session_has_Person": ("personId", "role", "sessionId"),
    "UserGroup": ("name", "userGroupId"),
    "UserGroup_has_Permission": ("permissionId", "userGroupId"),
    "UserGroup_has_Person": ("personId", "userGroupId"),
}  # fmt: skip
